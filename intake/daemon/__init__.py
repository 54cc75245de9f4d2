"""The daemon's stages around the pure core, one module each:

- ``ledger``: poll the mailbox, store every message's bytes and its ledger row first;
- ``claims``: which worker holds which message (compare-and-set, lease, row locks);
- ``transitions``: the one function that moves a message between states, and audits it;
- ``judging``: unpack and judge with the core, save projects, findings and files;
- ``rules``: the collection's rules beyond one message (units, supersession, quotas);
- ``replying``: decide the reply and queue it as an outbox row (loop safety, the per-sender cap);
- ``delivery``: send every due outbox row, one connection per batch, exactly once;
- ``worker``: the loop that takes messages through the stages, and what a failure does;
- ``staff``: reprocess, override, resend;
- ``queries``: what staff commands (and the digest, a web view) read;
- ``digest``, ``digest_items``: what the daily digest says, queued once a day;
- ``alerts``: mail to staff when polling fails or a login is refused, and when it recovers
  (the digest and alerts are queued rows too: the same delivery pass sends them).
"""
