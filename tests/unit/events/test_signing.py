"""Webhook signatures: what a receiver computes must match what Orbit sends."""

from __future__ import annotations

import hashlib
import hmac

from orbit.platform.events.signing import SECRET_PREFIX, new_secret, signature, verify

BODY = b'{"id":"0190","type":"contact.created"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    expected = hmac.new(b"whsec_k", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature("whsec_k", 1700000000, BODY) == f"v1={expected}"


def test_verify_accepts_the_signature_and_refuses_any_change() -> None:
    header = signature("whsec_k", 1700000000, BODY)
    assert verify("whsec_k", header, 1700000000, BODY, now=1700000010)
    assert not verify("whsec_other", header, 1700000000, BODY, now=1700000010)
    assert not verify("whsec_k", header, 1700000001, BODY, now=1700000010)
    assert not verify("whsec_k", header, 1700000000, BODY + b" ", now=1700000010)


def test_verify_refuses_an_old_timestamp_against_replays() -> None:
    header = signature("whsec_k", 1700000000, BODY)
    assert not verify("whsec_k", header, 1700000000, BODY, now=1700000000 + 301)


def test_verify_accepts_one_of_several_signatures_during_rotation() -> None:
    header = signature("old", 5, BODY) + ", " + signature("new", 5, BODY)
    assert verify("new", header, 5, BODY, now=5)


def test_secrets_are_prefixed_and_unique() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith(SECRET_PREFIX)
    assert first != second
    assert len(first) > 40


def test_the_readme_verification_snippet_accepts_orbit_signatures() -> None:
    import re  # noqa: PLC0415
    import time  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Events and webhooks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    namespace: dict[str, object] = {}
    exec(match.group(1), namespace)  # noqa: S102 - the README's own snippet
    readme_verify = namespace["verify"]
    assert callable(readme_verify)
    now = int(time.time())
    headers = {"Orbit-Timestamp": str(now), "Orbit-Signature": signature("whsec_k", now, BODY)}
    assert readme_verify("whsec_k", headers, BODY)
    assert not readme_verify("whsec_x", headers, BODY)
