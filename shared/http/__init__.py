"""HTTP plumbing shared by every service: the request guard middleware (context, body limits, NUL, rate limits)."""

from shared.http.guard import BODY_LIMIT_KEY, HttpGuard, body_limit

__all__ = ["BODY_LIMIT_KEY", "HttpGuard", "body_limit"]
