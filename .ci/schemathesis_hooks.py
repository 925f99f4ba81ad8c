"""Schemathesis hooks for the CI fuzzing step (.ci/schemathesis).

One hook: every well-formed `Idempotency-Key` the fuzzer generated is replaced
by a fresh one. Schemathesis draws header values from a small pool ("0",
"00", ...), so two different requests would share a key, and the server rightly
answers the second 422 `idempotency_key_reused` (a key names one request). A
client uses a new key per request; replays and reuse are tested by the
project's own tests (shared/app/tests, tests/e2e). A malformed key (one that
breaks the parameter's pattern) is left as generated, so that its rejection
is still checked.
"""

import re
import uuid

import schemathesis

_KEY = re.compile(r"^[\x21-\x7E]{1,128}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and _KEY.fullmatch(value):
                headers[name] = "st-" + uuid.uuid4().hex
