"""The fake Hugging Face provider passes authlib's real checks, registered exactly as Gradio does.

If it did not, every Sign-in-with-Hugging-Face test built on it would test the fake, not the
app; so the client here is authlib's Starlette client with Gradio's parameters and Gradio's
session cookie flags, and only the browser is played by hand (plain HTTP, redirects followed
one at a time, the consent form parsed from the page and submitted).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.starlette_client import OAuth
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.support.fake_hf_oauth import TOKEN_LIFETIME, FakeHuggingFace

APP = "https://testserver"  # https: Gradio's session cookie is Secure, as it is here


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHuggingFace]:
    with FakeHuggingFace() as provider:
        yield provider


def client_app(hub: FakeHuggingFace) -> TestClient:
    """An app signing in the way gradio/oauth.py does: same registration, same cookie flags."""
    env = hub.env()
    oauth = OAuth()
    oauth.register(
        name="huggingface",
        client_id=env["OAUTH_CLIENT_ID"],
        client_secret=env["OAUTH_CLIENT_SECRET"],
        client_kwargs={"scope": env["OAUTH_SCOPES"]},
        server_metadata_url=env["OPENID_PROVIDER_URL"] + "/.well-known/openid-configuration",
    )

    async def login(request: Request) -> Response:
        callback = str(request.url_for("callback").include_query_params(_target_url="/"))
        return await oauth.huggingface.authorize_redirect(request, callback)

    async def callback(request: Request) -> Response:
        info = await oauth.huggingface.authorize_access_token(request)
        request.session["oauth_info"] = info  # Gradio keeps it in the cookie session too
        keep = ("access_token", "token_type", "scope", "expires_at", "userinfo")
        return JSONResponse({key: info[key] for key in keep})

    app = Starlette(routes=[Route("/login", login), Route("/callback", callback)])
    app.add_middleware(SessionMiddleware, secret_key="x" * 32, same_site="none", https_only=True)
    return TestClient(app, base_url=APP)


class _Form(HTMLParser):
    """The first form on a page: its action, and each named input's (or button's) value."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.labels: list[str] = []
        self.buttons: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form" and self.action is None:
            self.action = attr.get("action", "")
        if tag == "input" and "name" in attr:
            self.fields[attr["name"]] = attr.get("value", "")
        self._in = tag if tag in ("label", "button") else None

    def handle_data(self, data: str) -> None:
        if self._in == "label":
            self.labels.append(data.strip())
        elif self._in == "button":
            self.buttons.append(data.strip())


def consent(hub: FakeHuggingFace, authorize_url: str, username: str) -> dict[str, list[str]]:
    """Be the user on the consent page: read it, type the name, press Authorize; the
    query the provider sends back to the redirect_uri."""
    page = httpx.get(authorize_url)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    assert "Hugging Face username" in form.labels and "Authorize" in form.buttons
    assert "username" in form.fields and form.action == "/oauth/authorize"
    answer = httpx.post(hub.url + form.action, data={**form.fields, "username": username})
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)


def sign_in(hub: FakeHuggingFace, app: TestClient, username: str) -> dict:
    login = app.get("/login", follow_redirects=False)
    assert login.status_code == 302
    authorize_url = login.headers["location"]
    assert authorize_url.startswith(hub.url + "/oauth/authorize?")
    asked = parse_qs(urlsplit(authorize_url).query)
    back = consent(hub, authorize_url, username)
    assert back["state"] == asked["state"] and back["_target_url"] == ["/"]
    done = app.get("/callback", params={key: value[0] for key, value in back.items()})
    assert done.status_code == 200, done.text
    return done.json()


def code_for(hub: FakeHuggingFace, username: str = "carol") -> tuple[str, str]:
    """An authorization code obtained without a client app, and the redirect_uri it is bound to."""
    redirect_uri = f"{APP}/callback"
    query = {"client_id": hub.client_id, "redirect_uri": redirect_uri, "response_type": "code"}
    authorize_url = str(httpx.URL(hub.url + "/oauth/authorize", params=query))
    return consent(hub, authorize_url, username)["code"][0], redirect_uri


def test_sign_in_gives_verified_userinfo_and_a_working_token(hub: FakeHuggingFace) -> None:
    info = sign_in(hub, client_app(hub), "alice")
    user = info["userinfo"]  # from the id_token, after authlib checked signature, iss, aud, nonce
    assert user["preferred_username"] == "alice" and user["name"] == "alice"
    assert user["profile"] == "https://huggingface.co/alice"
    assert info["token_type"] == "bearer" and info["scope"] == "openid profile"
    assert abs(info["expires_at"] - (time.time() + TOKEN_LIFETIME)) < 60
    bearer = {"Authorization": f"Bearer {info['access_token']}"}
    assert httpx.get(hub.url + "/oauth/userinfo", headers=bearer).json() == {
        key: user[key] for key in ("sub", "name", "preferred_username", "picture", "profile")
    }
    assert httpx.get(hub.url + "/oauth/userinfo").status_code == 401
    again, other = sign_in(hub, client_app(hub), "alice"), sign_in(hub, client_app(hub), "bob")
    assert again["userinfo"]["sub"] == user["sub"] != other["userinfo"]["sub"]


def test_token_endpoint_checks_the_client_secret(hub: FakeHuggingFace) -> None:
    code, redirect_uri = code_for(hub)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    wrong = httpx.post(hub.url + "/oauth/token", data=form, auth=(hub.client_id, "not-it"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    secret = {"client_id": hub.client_id, "client_secret": hub.client_secret}
    right = httpx.post(hub.url + "/oauth/token", data={**form, **secret})  # client_secret_post
    assert right.status_code == 200 and right.json()["id_token"].count(".") == 2


def test_a_code_works_once_and_only_with_its_redirect_uri(hub: FakeHuggingFace) -> None:
    code, redirect_uri = code_for(hub)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    basic = (hub.client_id, hub.client_secret)
    first = httpx.post(hub.url + "/oauth/token", data=form, auth=basic)
    assert first.status_code == 200, first.text
    second = httpx.post(hub.url + "/oauth/token", data=form, auth=basic)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    code, _ = code_for(hub)
    elsewhere = {**form, "code": code, "redirect_uri": f"{APP}/other"}
    moved = httpx.post(hub.url + "/oauth/token", data=elsewhere, auth=basic)
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"


def test_authorize_refuses_unknown_clients_and_missing_redirects(hub: FakeHuggingFace) -> None:
    good = {"client_id": hub.client_id, "redirect_uri": f"{APP}/cb", "response_type": "code"}
    assert httpx.get(hub.url + "/oauth/authorize", params=good).status_code == 200
    stranger = {**good, "client_id": "someone-else"}
    assert httpx.get(hub.url + "/oauth/authorize", params=stranger).status_code == 400
    nowhere = {key: value for key, value in good.items() if key != "redirect_uri"}
    assert httpx.get(hub.url + "/oauth/authorize", params=nowhere).status_code == 400


def test_consent_keeps_the_request_for_a_bad_name_and_can_be_cancelled(hub: FakeHuggingFace) -> None:
    query = {"client_id": hub.client_id, "redirect_uri": f"{APP}/cb", "response_type": "code", "state": "s1"}
    form = _Form()
    form.feed(httpx.get(hub.url + "/oauth/authorize", params=query).text)
    bad = httpx.post(hub.url + "/oauth/authorize", data={**form.fields, "username": "no spaces"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text  # the page again, with the problem
    cancel = httpx.post(hub.url + "/oauth/authorize", data={**form.fields, "decision": "deny"})
    assert cancel.status_code == 302
    answer = parse_qs(urlsplit(cancel.headers["location"]).query)
    assert answer == {"error": ["access_denied"], "state": ["s1"]}
    late = httpx.post(hub.url + "/oauth/authorize", data={**form.fields, "username": "alice"})
    assert late.status_code == 400  # a request is answered once
