"""Who a request is (voicebox.identity): logins, Hugging Face sessions, anonymous browsers, nobody."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from voicebox.auth import auth_required, public
from voicebox.config import ConfigError, Settings
from voicebox.identity import (
    ANON_COOKIE, AnonymousCookie, SignInRequired, anonymous_owner, multi_user, visitor, visitor_of_request,
)

SECRET = "A" * 43


def oauth_session(name: str, expires_in: float = 3600) -> dict:
    """What Gradio keeps in its session after "Sign in with Hugging Face"."""
    return {"oauth_info": {"userinfo": {"preferred_username": name}, "expires_at": time.time() + expires_in}}


def test_the_settings_read_spaces_oauth_and_anonymous_mode(tmp_path: Path) -> None:
    base = {"VOICEBOX_DATA_DIR": str(tmp_path)}
    plain = Settings.from_env(base)
    assert not plain.hf_sign_in and not plain.anonymous and plain.anonymous_days == 30
    space = Settings.from_env({**base, "SPACE_ID": "me/voicebox", "OAUTH_CLIENT_ID": "abc"})
    assert space.hf_sign_in and space.quotas == "public"
    assert not Settings.from_env({**base, "OAUTH_CLIENT_ID": "abc"}).hf_sign_in  # OAuth only on a Space
    anonymous = Settings.from_env({**base, "VOICEBOX_ANONYMOUS": "yes", "VOICEBOX_ANONYMOUS_DAYS": "7"})
    assert anonymous.anonymous and anonymous.anonymous_days == 7
    with pytest.raises(ConfigError, match="VOICEBOX_ANONYMOUS must be 1 or 0"):
        Settings.from_env({**base, "VOICEBOX_ANONYMOUS": "maybe"})
    with pytest.raises(ConfigError, match="VOICEBOX_ANONYMOUS_DAYS"):
        Settings.from_env({**base, "VOICEBOX_ANONYMOUS": "1", "VOICEBOX_ANONYMOUS_DAYS": "-1"})


def test_each_kind_of_visitor_gets_its_own_owner(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path)
    assert visitor(local).kind == "local" and visitor(local).owner == ""
    assert visitor(local, cookies={ANON_COOKIE: SECRET}).owner == ""  # the mode is off: cookies mean nothing

    space = Settings(data_dir=tmp_path, hf_sign_in=True)
    assert visitor(space, session=oauth_session("alice")).owner == "hf:alice"
    assert visitor(space, session=oauth_session("alice")).name == "alice"
    assert visitor(space, session=oauth_session("alice", expires_in=-1)).kind == "nobody"  # expired sign-in
    assert visitor(space, session={"oauth_info": {"userinfo": {}}}).kind == "nobody"
    stranger = visitor(space)
    assert stranger.kind == "nobody" and not stranger.known
    with pytest.raises(SignInRequired, match="Sign in with Hugging Face"):
        stranger.require(space)

    both = Settings(data_dir=tmp_path, hf_sign_in=True, anonymous=True)
    anon = visitor(both, cookies={ANON_COOKIE: SECRET})
    assert anon.kind == "anonymous" and anon.owner == anonymous_owner(SECRET)
    assert SECRET not in anon.owner and anon.owner.startswith("anon:")  # the secret never becomes a name
    assert anonymous_owner("B" * 43) != anon.owner
    assert visitor(both, cookies={ANON_COOKIE: SECRET}, session=oauth_session("bo")).owner == "hf:bo"
    assert visitor(both, cookies={ANON_COOKIE: "short"}).kind == "nobody"  # a forged, guessable id
    no_cookies = Settings(data_dir=tmp_path, anonymous=True)
    with pytest.raises(SignInRequired, match="Allow cookies for this site"):
        visitor(no_cookies).require(no_cookies)


def test_a_login_wins_and_the_old_single_login_stays_the_local_user(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth=("me", "my-password-1"), users=(("ana", "ana-password-1"),))
    assert visitor(settings, "ana").owner == "ana" and visitor(settings, "ana").kind == "account"
    assert visitor(settings, "me").owner == ""  # VOICEBOX_AUTH: the local user behind a password
    assert visitor(settings).kind == "local"  # a private server: no stranger gets here without a login


def test_several_libraries_mean_consent_is_asked(tmp_path: Path) -> None:
    assert not multi_user(Settings(data_dir=tmp_path))
    assert not multi_user(Settings(data_dir=tmp_path, auth=("me", "my-password-1")))  # one person
    assert multi_user(Settings(data_dir=tmp_path / "u", users=(("ana", "ana-password-1"),)))
    assert multi_user(Settings(data_dir=tmp_path, hf_sign_in=True))
    assert multi_user(Settings(data_dir=tmp_path, anonymous=True))


def test_a_public_server_wants_credentials_on_its_rest_api(tmp_path: Path) -> None:
    assert not auth_required(Settings(data_dir=tmp_path))
    for settings in (Settings(data_dir=tmp_path, hf_sign_in=True), Settings(data_dir=tmp_path, anonymous=True)):
        assert public(settings) and auth_required(settings)


def test_a_gradio_request_is_read_through_its_starlette_request(tmp_path: Path) -> None:
    import gradio as gr

    settings = Settings(data_dir=tmp_path, anonymous=True, hf_sign_in=True)
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"",
             "headers": [(b"cookie", f"{ANON_COOKIE}={SECRET}".encode())], "session": oauth_session("cy")}
    assert visitor_of_request(settings, gr.Request(Request(scope))).owner == "hf:cy"
    del scope["session"]
    assert visitor_of_request(settings, gr.Request(Request(scope))).owner == anonymous_owner(SECRET)
    assert visitor_of_request(settings, None).kind == "nobody"


def cookie_app() -> Starlette:
    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.cookies.get(ANON_COOKIE, ""))

    return Starlette(routes=[Route("/", me), Route("/other", me)])


def test_the_anonymous_cookie_is_set_once_private_and_kept() -> None:
    app = AnonymousCookie(cookie_app(), days=30)
    with TestClient(app) as client:
        first = client.get("/")
        secret = first.text  # the first request already runs as its new visitor
        assert len(secret) == 43 and first.cookies.get(ANON_COOKIE) == secret
        header = first.headers["set-cookie"]
        assert "HttpOnly" in header and "Max-Age=2592000" in header and "SameSite=Lax" in header
        assert "Secure" not in header  # plain http on a laptop: a Secure cookie would be dropped
        again = client.get("/other")
        assert again.text == secret and "set-cookie" not in again.headers  # kept, not replaced
        assert client.get("/").headers["set-cookie"].startswith(f"{ANON_COOKIE}={secret};")  # renewed on a visit
    with TestClient(app, base_url="https://space.example") as client:
        header = client.get("/").headers["set-cookie"]
        # inside huggingface.co's iframe a Lax cookie is never sent
        assert "Secure" in header and "SameSite=None" in header and "Partitioned" in header
    with TestClient(app) as client:
        client.cookies.set(ANON_COOKIE, "guessable")
        replaced = client.get("/")
        assert replaced.text != "guessable" and len(replaced.text) == 43
