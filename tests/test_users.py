"""Accounts (issue #16, identity): the users file, VOICEBOX_USERS / VOICEBOX_AUTH, API tokens,
the ``users`` command, and who a REST request or a UI login resolves to.

No model is needed: the REST checks run on routes that only read the store (``/profiles``) or are
refused before the body is read (``/v1/audio/speech``).
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from tests.support.rest import basic
from voicebox import cli
from voicebox import passwords as password_module
from voicebox.api import create_api_app
from voicebox.api.guards import current_user, route_class
from voicebox.auth import check_credentials, gradio_auth, has_login, resolve
from voicebox.config import ConfigError, Settings
from voicebox.services import Studio
from voicebox.users import API_TOKEN_USER, TOKEN_PREFIX, Users, UsersError, UsersFileError

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def header(pair: dict[str, str]) -> str:
    return pair["Authorization"]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "users.json"


@pytest.fixture
def kdf_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every scrypt run (its salt), to see what a check cost without timing it."""
    calls: list[bytes] = []
    real = password_module._scrypt

    def counting(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append(salt)
        return real(password, salt, n, r, p)

    monkeypatch.setattr(password_module, "_scrypt", counting)
    return calls


# ---- the users file ------------------------------------------------------------------------
def test_passwords_are_salted_scrypt_hashes_in_a_private_file(path: Path) -> None:
    registry = Users(path)
    registry.add("alice", PASSWORD)
    registry.add("bob", PASSWORD)  # the same password: different salt, different hash
    text = path.read_text(encoding="utf-8")
    assert PASSWORD not in text and "horse" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = {u["name"]: u["password"] for u in json.loads(text)["users"]}
    assert {p["kdf"] for p in stored.values()} == {"scrypt"} and stored["alice"]["n"] >= 2**14
    assert stored["alice"]["salt"] != stored["bob"]["salt"]
    assert stored["alice"]["hash"] != stored["bob"]["hash"]
    assert not list(path.parent.glob("*.tmp")) and not list(path.parent.glob(".*.tmp"))


def test_verify_right_wrong_unknown_cost_the_same(path: Path, kdf_calls: list[bytes]) -> None:
    registry = Users(path)
    registry.add("alice", PASSWORD)
    kdf_calls.clear()
    assert registry.verify("alice", "wrong password") is None
    assert registry.verify("mallory", PASSWORD) is None
    assert registry.verify("", "") is None
    assert len(kdf_calls) == 3  # an unknown name runs scrypt too (on a dummy hash): no timing tell
    user = registry.verify("alice", PASSWORD)
    assert user is not None and user.name == "alice" and user.source == "file"
    assert "horse" not in repr(user)
    calls = len(kdf_calls)
    assert registry.verify("alice", PASSWORD) == user and len(kdf_calls) == calls  # remembered
    assert registry.verify("alice", PASSWORD + "!") is None and len(kdf_calls) == calls + 1


def test_refusals_are_clear(path: Path) -> None:
    registry = Users(path)
    registry.add("alice", PASSWORD)
    for action, words in [
        (lambda: registry.add("alice", PASSWORD), "taken"),
        (lambda: registry.add("carol", "short"), "at least 8"),
        (lambda: registry.add("bad name", PASSWORD), "not an account name"),
        (lambda: registry.add("a:b", PASSWORD), "not an account name"),
        (lambda: registry.remove("nobody"), "No account named nobody"),
        (lambda: registry.issue_token("nobody"), "No account named nobody"),
        (lambda: registry.revoke("alice", "nope"), "no token labelled nope"),
        (lambda: registry.issue_token("alice", " spaced "), "label"),
    ]:
        with pytest.raises(UsersError) as info:
            action()
        assert words in str(info.value) and "\n" not in str(info.value)


def test_changes_reach_a_running_registry(path: Path) -> None:
    """The server's registry and the CLI's are different objects on one file."""
    server, cli_side = Users(path), Users(path)
    assert not server.required and server.verify("alice", PASSWORD) is None
    cli_side.add("alice", PASSWORD)
    assert server.required and server.verify("alice", PASSWORD) is not None
    cli_side.remove("alice")
    assert server.verify("alice", PASSWORD) is None  # even though this login was remembered
    assert server.required  # the last account gone: nobody gets in, the server does not open up


def test_a_damaged_file_stops_start_up_but_not_a_running_server(path: Path) -> None:
    running = Users(path)
    running.add("alice", PASSWORD)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsersFileError) as info:
        Users(path)
    assert isinstance(info.value, ConfigError) and str(path) in str(info.value)
    assert running.verify("alice", PASSWORD) is not None  # keeps the accounts it had
    path.write_text(json.dumps({"version": 1, "users": [{"name": "x y"}]}), encoding="utf-8")
    with pytest.raises(UsersFileError, match="damaged"):
        Users(path)


# ---- tokens --------------------------------------------------------------------------------
def test_tokens_are_shown_once_hashed_at_rest_and_revocable(path: Path) -> None:
    registry = Users(path)
    registry.add("alice", PASSWORD)
    first, secret = registry.issue_token("alice", "laptop")
    second, other = registry.issue_token("alice")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40 and secret != other
    assert (first.label, second.label) == ("laptop", "token1")
    text = path.read_text(encoding="utf-8")
    assert secret not in text and secret[len(TOKEN_PREFIX):] not in text and first.sha256 in text
    assert secret not in repr(registry.get("alice"))
    assert registry.check_token(secret).name == "alice"  # type: ignore[union-attr]
    with pytest.raises(UsersError, match="already has a token labelled laptop"):
        registry.issue_token("alice", "laptop")
    registry.revoke("alice", "laptop")
    assert registry.check_token(secret) is None and registry.check_token(other) is not None
    assert registry.check_token(secret + "x") is None and registry.check_token("") is None


def test_token_use_is_recorded(path: Path) -> None:
    registry = Users(path)
    registry.add("alice", PASSWORD)
    _, secret = registry.issue_token("alice")
    assert registry.get("alice").tokens[0].last_used is None  # type: ignore[union-attr]
    registry.check_token(secret)
    assert registry.get("alice").tokens[0].last_used  # type: ignore[union-attr]


# ---- the environment -----------------------------------------------------------------------
def test_voicebox_users_are_accounts(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"VOICEBOX_DATA_DIR": str(tmp_path), "VOICEBOX_USERS": "alice:pw:with:colons, bob:second,",
         "VOICEBOX_AUTH": "carol:third"}
    )
    assert settings.users == (("alice", "pw:with:colons"), ("bob", "second"))
    assert "pw:with" not in repr(settings)
    registry = Users.from_settings(settings)
    assert registry.verify("alice", "pw:with:colons").source == "VOICEBOX_USERS"  # type: ignore[union-attr]
    assert registry.verify("bob", "second") is not None and registry.verify("bob", "pw:with:colons") is None
    assert registry.verify("carol", "third").source == "VOICEBOX_AUTH"  # type: ignore[union-attr]
    assert not (tmp_path / "users.json").exists()  # in memory only
    # an environment account keeps its tokens in the file; its password stays the environment's
    _, secret = registry.issue_token("alice")
    assert registry.check_token(secret).name == "alice"  # type: ignore[union-attr]
    assert "pw:with" not in (tmp_path / "users.json").read_text(encoding="utf-8")
    with pytest.raises(UsersError, match="set by VOICEBOX_USERS"):
        registry.add("bob", PASSWORD)
    with pytest.raises(UsersError, match="set by VOICEBOX_USERS"):
        registry.remove("bob")
    assert registry.verify("alice", "pw:with:colons") is not None


@pytest.mark.parametrize(
    "env, words",
    [
        ({"VOICEBOX_USERS": "alice"}, "entry 1 has no ':'"),
        ({"VOICEBOX_USERS": "alice:pw,bobsecret"}, "entry 2 has no ':'"),
        ({"VOICEBOX_USERS": "alice:"}, "empty password"),
        ({"VOICEBOX_USERS": ":pw"}, "bad name"),
        ({"VOICEBOX_USERS": "al ice:pw"}, "bad name"),
        ({"VOICEBOX_USERS": "alice:a,alice:b"}, "twice"),
        ({"VOICEBOX_USERS": "alice:a", "VOICEBOX_AUTH": "alice:b"}, "both name alice"),
        ({"VOICEBOX_AUTH": "nocolon"}, "user:password"),
    ],
)
def test_bad_account_settings_say_what_is_wrong(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert "bobsecret" not in message and "pw" not in message.replace("password", "")


def test_voicebox_auth_and_the_shared_token_keep_working(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth=("ada", "pässword"), api_token="tok-123")
    assert check_credentials(settings, header(basic("ada", "pässword")))
    assert resolve(settings, "Bearer tok-123").name == "ada"  # type: ignore[union-attr]
    assert resolve(settings, "Bearer tok-1234") is None and resolve(settings, "Token tok-123") is None
    token_only = Settings(data_dir=tmp_path, api_token="tok-9")
    assert resolve(token_only, "bearer tok-9").name == API_TOKEN_USER  # type: ignore[union-attr]
    assert not has_login(token_only) and gradio_auth(token_only) is None


# ---- the command line ----------------------------------------------------------------------
def run_users(*args: str, data: Path, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "voicebox", "users", *args, "--data-dir", str(data)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120, input=stdin,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_users_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = run_users("add", "alice", "--password-stdin", data=data, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "Added alice" in added.stderr and added.stdout == ""
    assert Users(data / "users.json").verify("alice", PASSWORD) is not None
    taken = run_users("add", "alice", "--password-stdin", data=data, stdin=PASSWORD + "\n")
    assert taken.returncode == 1 and "taken" in taken.stderr and "Traceback" not in taken.stderr
    short = run_users("add", "bob", "--password-stdin", data=data, stdin="short\n")
    assert short.returncode == 1 and "at least 8" in short.stderr
    made = run_users("token", "alice", "--label", "ci", data=data)
    assert made.returncode == 0 and "shown only this once" in made.stderr
    secret = made.stdout.strip()
    assert secret.startswith(TOKEN_PREFIX) and secret not in (data / "users.json").read_text(encoding="utf-8")
    assert Users(data / "users.json").check_token(secret).name == "alice"  # type: ignore[union-attr]
    listed = run_users("list", data=data, env={"VOICEBOX_USERS": "zed:envpass1"})
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t") == ["alice", "users file", "1 token (ci)"]
    assert lines[1].split("\t") == ["zed", "VOICEBOX_USERS", "0 tokens"]
    assert "scrypt" not in listed.stdout and "envpass1" not in listed.stdout
    unknown = run_users("remove", "nobody", data=data)
    assert unknown.returncode == 1 and "No account named nobody" in unknown.stderr
    assert run_users("revoke", "alice", "ci", data=data).returncode == 0
    assert Users(data / "users.json").check_token(secret) is None
    removed = run_users("remove", "alice", data=data)
    assert removed.returncode == 0 and run_users("list", data=data).stdout == ""


def test_users_add_asks_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    assert cli.main(["users", "add", "alice", "--data-dir", str(tmp_path)]) == 1
    assert "differ" in capsys.readouterr().err and not (tmp_path / "users.json").exists()
    answers = iter([PASSWORD, PASSWORD])
    assert cli.main(["users", "add", "alice", "--data-dir", str(tmp_path)]) == 0
    assert Users(tmp_path / "users.json").verify("alice", PASSWORD) is not None


def test_an_account_counts_as_a_login_for_public_exposure(tmp_path: Path) -> None:
    public = Settings(data_dir=tmp_path, host="0.0.0.0")
    with pytest.raises(cli.UnsafeLaunch, match="users add"):
        cli.check_exposure(public, share=True, insecure_no_auth=False)
    Users(public.users_path).add("alice", PASSWORD)
    again = Settings(data_dir=tmp_path, host="0.0.0.0")  # a new start: the file now has an account
    assert cli.check_exposure(again, share=True, insecure_no_auth=False) is None
    env_only = Settings(data_dir=tmp_path / "other", host="0.0.0.0", users=(("bob", "pw"),))
    assert cli.check_exposure(env_only, share=False, insecure_no_auth=False) is None
    token_only = Settings(data_dir=tmp_path / "other", host="0.0.0.0", api_token="t")
    with pytest.raises(cli.UnsafeLaunch):  # a token protects the API, not the UI
        cli.check_exposure(token_only, share=False, insecure_no_auth=False)


# ---- REST ----------------------------------------------------------------------------------
@pytest.fixture
def accounts(tmp_path: Path) -> tuple[Settings, str]:
    """Settings with alice in the users file (and a token of hers) and bob in VOICEBOX_USERS."""
    settings = Settings(data_dir=tmp_path / "data", device="cpu", users=(("bob", "bob-password"),))
    registry = Users(settings.users_path)
    registry.add("alice", PASSWORD)
    return settings, registry.issue_token("alice", "script")[1]


def test_rest_needs_an_account(accounts: tuple[Settings, str]) -> None:
    settings, secret = accounts
    client = TestClient(create_api_app(Studio(settings), settings))
    anonymous = client.get("/profiles")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    assert client.get("/profiles", headers=basic("alice", PASSWORD)).status_code == 200
    assert client.get("/profiles", headers=basic("bob", "bob-password")).status_code == 200
    assert client.get("/profiles", headers=bearer(secret)).status_code == 200
    wrong = client.get("/profiles", headers=basic("alice", "wrong password"))
    unknown = client.get("/profiles", headers=basic("mallory", PASSWORD))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == anonymous.json()  # no hint which part was wrong
    assert client.get("/profiles", headers=bearer(secret[:-1])).status_code == 401
    speech = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "x"})
    assert speech.status_code == 401
    assert speech.json()["error"]["code"] == "invalid_api_key"  # OpenAI's shape under /v1/
    assert client.get("/openapi.json").status_code == 401
    assert set(client.get("/health").json()) == {"status", "version", "auth_required"}
    Users(settings.users_path).revoke("alice", "script")
    assert client.get("/profiles", headers=bearer(secret)).status_code == 401  # at once


def test_the_request_knows_its_user(accounts: tuple[Settings, str]) -> None:
    settings, secret = accounts
    router = APIRouter(route_class=route_class(settings, protected=True))

    @router.get("/whoami")
    def whoami(request: Request) -> dict[str, Any]:
        user = current_user(request)
        return {"name": user.name if user else None}

    app = FastAPI()
    app.include_router(router)
    client = TestClient(app)
    assert client.get("/whoami", headers=bearer(secret)).json() == {"name": "alice"}
    assert client.get("/whoami", headers=basic("bob", "bob-password")).json() == {"name": "bob"}
    assert client.get("/whoami").status_code == 401
    open_app = FastAPI()
    no_accounts = Settings(data_dir=settings.data_dir / "open")
    open_router = APIRouter(route_class=route_class(no_accounts, protected=True))
    open_router.add_api_route("/whoami", whoami)
    open_app.include_router(open_router)
    assert TestClient(open_app).get("/whoami").json() == {"name": None}  # no accounts: one user, no login


def test_the_first_account_locks_a_running_api(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", device="cpu")
    client = TestClient(create_api_app(Studio(settings), settings))
    assert client.get("/profiles").status_code == 200
    Users(settings.users_path).add("alice", PASSWORD)
    assert client.get("/profiles").status_code == 401
    assert client.get("/profiles", headers=basic("alice", PASSWORD)).status_code == 200


# ---- the UI's login --------------------------------------------------------------------------
def test_gradio_login_takes_the_registry_accounts(accounts: tuple[Settings, str]) -> None:
    settings, secret = accounts
    login = gradio_auth(settings)
    assert login is not None
    assert login("alice", PASSWORD) and login("bob", "bob-password")
    assert not login("alice", "wrong password") and not login("mallory", PASSWORD)
    assert not login("alice", secret)  # a token is for the API, not the login form
    Users(settings.users_path).add("carol", PASSWORD)
    assert login("carol", PASSWORD)  # added while the server runs: can log in at once


@pytest.mark.slow
def test_gradio_login_form(accounts: tuple[Settings, str]) -> None:
    from voicebox.server import create_app

    settings, _ = accounts
    with TestClient(create_app(settings, Studio(settings))) as browser:
        assert browser.get("/config").status_code == 401
        assert browser.post("/login", data={"username": "mallory", "password": PASSWORD}).status_code >= 400
        assert browser.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 200
        assert browser.get("/config").status_code == 200
        browser.cookies.clear()
        assert browser.post("/login", data={"username": "bob", "password": "bob-password"}).status_code == 200


def test_basic_header_decoding(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth=("ada", "pässword"))
    encoded = base64.b64encode("ada:pässword".encode()).decode()
    assert resolve(settings, f"Basic {encoded}").name == "ada"  # type: ignore[union-attr]
    assert resolve(settings, "Basic !!!") is None and resolve(settings, "Basic") is None
    assert resolve(settings, None) is None and resolve(settings, "Bearer ") is None
