"""The count of declared containers that decides whether a message is walked for its
depth: the same as the regular expression it replaced (re.I, a look-behind for the line
start), on crafted and random input, and linear in the input's length."""

from __future__ import annotations

import random
import re
from itertools import islice

import pytest

from intake.parsers.mail_depth import MAX_MIME_DEPTH, _containers_declared, bound_depth

# what bound_depth counted with before (slow: sre tried it at every position)
REFERENCE = re.compile(rb"(?:(?<=[\r\n])|\A)content-type[ \t]*:\s*(?:multipart|message)/", re.I)
MOST = MAX_MIME_DEPTH // 2 + 1


def reference(raw: bytes) -> int:
    return sum(1 for _ in islice(REFERENCE.finditer(raw), MOST))


@pytest.mark.parametrize("raw", [
    b"", b"Content-Type: multipart/mixed", b"X-Content-Type: multipart/mixed\n",
    b"\r\nCONTENT-TYPE:\r\n\tMultiPart/x", b"\rcontent-type :message/rfc822", b"content-typecontent-type: message/",
    b"a content-type: multipart/x\ncontent-Type:\n\n message/x\n", b"\ncontent-type:content-type: multipart/x",
    b"\ncontent-type: multipart\ncontent-type: multipart/", b"\ncontent-type: text/plain; x=multipart/",
    b"\n".join([b"Content-Type: multipart/mixed"] * 40),  # past the most counted
])
def test_the_count_is_the_regular_expressions(raw):
    assert _containers_declared(raw, MOST) == reference(raw)


def test_the_count_on_random_header_soup():
    pieces = [b"content-type", b"Content-Type", b"CONTENT-type", b":", b" ", b"\t", b"\r", b"\n", b"\r\n",
              b"multipart/", b"Message/", b"text/plain", b"x", b"-", b"\xff", b"\x00"]
    rng = random.Random(13)
    for _ in range(3000):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        assert _containers_declared(raw, MOST) == reference(raw), raw


def test_a_deep_message_is_still_bounded():
    nested = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (n, n) for n in range(60))
    bounded, too_deep = bound_depth(nested + b"Content-Type: text/plain\n\nhi\n")
    assert too_deep is not None and too_deep.limit == MAX_MIME_DEPTH and len(bounded) < len(nested)
