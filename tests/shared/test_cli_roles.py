"""The CLI lists the roles without importing the auth module (``zjtx run`` stays lean); the two lists agree."""

from shared.auth import Role
from shared.cli import ROLES


def test_cli_roles_are_the_auth_roles() -> None:
    assert set(ROLES) == {r.value for r in Role}
