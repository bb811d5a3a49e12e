"""Schemathesis checks of Bazaar's own conventions (DESIGN §7)."""

import schemathesis


@schemathesis.check
def problem_json_on_4xx(ctx, response, case):
    """Every 4xx answer is application/problem+json with a matching status."""
    if not 400 <= response.status_code < 500:
        return None
    values = response.headers.get("content-type") or [""]
    media_type = values[0].split(";")[0].strip().lower()
    if media_type != "application/problem+json":
        raise AssertionError(
            f"{response.status_code} answered as {media_type!r}, not application/problem+json"
        )
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != response.status_code:
        raise AssertionError(f"the problem's status does not match {response.status_code}: {body!r}")
    for word in ("panicked", "sqlx", "async_nats", ".rs:", "/src/"):
        if word in response.text:
            raise AssertionError(f"the problem leaks internals ({word!r}): {response.text}")
    return None
