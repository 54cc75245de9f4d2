"""Mail that leaves: replies, the outbox queue (``outbox``) and the transports (``smtp``,
the outbox folder in ``transport``)."""
