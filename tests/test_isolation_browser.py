"""Isolation (issue #16) in the UI: ana and bo logged in at once, in two browser contexts, and
through the Gradio API with the Python client.

Bo's Profiles list, voice pickers and History show none of ana's voice or take, and the file of
ana's take that her page plays (and a file she uploads) cannot be fetched with bo's login: Gradio
answers exactly as for a file it does not have. Over the Gradio API bo's listings leave ana's out
and her ids fail as missing ones do. The whole app runs as deployed (``create_app``) with real
speech from espeak-ng.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.browser import (
    VIEWPORTS, chromium, close_toasts, error_badges, expect, field, open_tab, screenshot, toast,
)
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox.config import Settings
from voicebox.records import GenerationRequest
from voicebox.services import Studio
from voicebox.store import new_id

PASSWORDS = {"ana": "ana-password-1", "bo": "bo-password-22"}
WORDS = "The quick brown fox jumps over the lazy dog near the river bank."
SECRET = "Ana's secret line about the lighthouse."
IDS: dict[str, str] = {}  # ana's records, filled by the app fixture
SERVED: dict[str, Any] = {}  # the studio behind the server


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, espeak_wav: Path) -> Iterator[str]:
    data = tmp_path_factory.mktemp("isolation-ui") / "data"
    settings = Settings(data_dir=data, quality="off", quotas="off", rate_limit="off",
                        users=tuple(PASSWORDS.items()))
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    voice = studio.create_profile("Ana Voice", language="English", owner="ana", consent="2026-12-01T10:00:00Z")
    studio.add_sample(voice.id, espeak_wav, WORDS, owner="ana")
    take = studio.generate(GenerationRequest(voice.id, SECRET), owner="ana")
    IDS.update(profile=voice.id, generation=take.id)
    SERVED["studio"] = studio
    yield from serve_app(settings, studio)


def logged_in(browser: Any, url: str, name: str, viewport: str = "desktop") -> Any:
    """A browser context of its own (cookies, Gradio session) logged in as ``name``."""
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    answer = context.request.post(f"{url}login", form={"username": name, "password": PASSWORDS[name]})
    assert answer.ok, answer.text()
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url)
    expect()(page.locator(".vb-header h1")).to_have_text("voicebox")
    return page


@pytest.mark.browser
def test_two_people_see_only_their_own(app_url: str, espeak_wav: Path) -> None:
    check = expect()
    with chromium() as browser:
        # ana on a laptop, bo on a phone: isolation must hold at both sizes
        ana, bo = logged_in(browser, app_url, "ana"), logged_in(browser, app_url, "bo", "phone")
        check(ana.locator("#vb-who")).to_contain_text("Signed in as ana")
        check(bo.locator("#vb-who")).to_contain_text("Signed in as bo")
        check(ana.locator("#profile-list")).to_contain_text("Ana Voice · 1 sample")
        check(bo.locator("#profile-empty")).to_contain_text("No profiles yet")
        check(bo.get_by_text("Ana Voice")).to_have_count(0)

        open_tab(ana, "History")
        check(ana.locator("#history-stats")).to_contain_text("Ana Voice — 1 take")
        row = ana.locator("#history-table").get_by_text(SECRET).locator("visible=true").first
        with ana.expect_response(lambda r: "/gradio_api/file=" in r.url and r.url.endswith(".wav")) as played:
            row.click()
            check(ana.locator("#history-info")).to_contain_text(SECRET)
        take_url = played.value.url

        open_tab(bo, "History")
        check(bo.locator("#history-empty")).to_contain_text("Nothing here yet")
        check(bo.locator("#history-stats")).to_contain_text(re.compile(r"Takes\s*0"))
        bo.locator("#history-search input, #history-search textarea").first.fill("secret")
        check(bo.locator("#history-empty")).to_contain_text("Nothing here yet")
        check(bo.get_by_text(SECRET)).to_have_count(0)
        open_tab(bo, "Generate")
        check(bo.locator("#gen-profile input")).not_to_have_value("Ana Voice")
        open_tab(bo, "Profiles")
        bo.locator("#profile-search input, #profile-search textarea").first.fill("Ana")
        check(bo.locator("#profile-empty")).to_contain_text("No profiles match this search")
        check(bo.get_by_text("Ana Voice")).to_have_count(0)
        screenshot(bo, "isolation-bo")

        # ana's take, by the very URL her page played: hers to fetch, and for bo like a missing file
        assert ana.context.request.get(take_url).status == 200
        theirs = bo.context.request.get(take_url)
        missing_url = re.sub(r"/[0-9a-f]{64}/", "/" + "0" * 64 + "/", take_url)  # no such cache folder
        assert missing_url != take_url
        missing = bo.context.request.get(missing_url)
        assert theirs.status == missing.status == 403
        assert theirs.text().replace(take_url.split("file=")[1], "<path>") == missing.text().replace(
            missing_url.split("file=")[1], "<path>")

        # a file ana uploads is hers alone too
        upload = ana.context.request.post(f"{app_url}gradio_api/upload", multipart={
            "files": {"name": "mine.wav", "mimeType": "audio/wav", "buffer": espeak_wav.read_bytes()}})
        assert upload.ok, upload.text()
        uploaded = f"{app_url}gradio_api/file={upload.json()[0]}"
        assert ana.context.request.get(uploaded).status == 200
        assert bo.context.request.get(uploaded).status == 403

        for page in (ana, bo):
            check(error_badges(page)).to_have_count(0)
        screenshot(ana, "isolation-ana")

        # several people keep voices here: a new profile asks for the speaker's permission first
        field(bo, "profile-search").fill("")
        field(bo, "profile-name").fill("Bo Voice")
        consent = bo.locator("#profile-consent")
        check(consent).to_contain_text("I have the speaker's permission to clone this voice")
        bo.locator("#profile-create").click()
        check(toast(bo, "warning", "Confirm that you have the speaker's permission")).to_be_visible()
        check(field(bo, "profile-name")).to_have_value("Bo Voice")  # refused: the form is as it was
        check(bo.locator("#profile-empty")).to_contain_text("No profiles yet")
        check(error_badges(bo)).to_have_count(0)
        screenshot(bo, "consent-refused-phone")
        close_toasts(bo)
        consent.locator("input[type=checkbox]").check()
        bo.locator("#profile-create").click()
        check(bo.locator("#profile-list")).to_contain_text("Bo Voice")
        check(consent).to_be_hidden()  # asked once, when the profile is made
        studio = SERVED["studio"]
        made = studio.list_profiles(owner="bo")["items"]
        assert [p.name for p in made] == ["Bo Voice"] and made[0].consented_at.startswith("20")
        studio.delete_profile(made[0].id, owner="bo")  # the API test below expects bo to have none


def test_the_gradio_api_answers_each_login_with_its_own(app_url: str) -> None:
    from gradio_client import Client

    ana = Client(app_url, auth=("ana", PASSWORDS["ana"]), verbose=False)
    bo = Client(app_url, auth=("bo", PASSWORDS["bo"]), verbose=False)
    assert [p["name"] for p in ana.predict("", api_name="/list_profiles")["items"]] == ["Ana Voice"]
    assert bo.predict("", api_name="/list_profiles") == {"items": [], "total": 0}
    assert bo.predict("", "", 50, 0, api_name="/list_history")["total"] == 0
    assert bo.predict(api_name="/history_stats")["count"] == 0
    missing = new_id()
    for endpoint, theirs in (("/get_profile", IDS["profile"]), ("/get_generation", IDS["generation"]),
                             ("/generation_audio", IDS["generation"]), ("/delete_generation", IDS["generation"])):
        refusals = []
        for asked in (theirs, missing):
            with pytest.raises(Exception) as refused:  # noqa: PT011 - gradio_client's AppError
                bo.predict(asked, api_name=endpoint)
            refusals.append(str(refused.value).replace(asked, "<id>"))
        assert refusals[0] == refusals[1] and "does not exist" in refusals[0], (endpoint, refusals)
    assert ana.predict(IDS["generation"], api_name="/get_generation")["text"] == SECRET
    with pytest.raises(Exception, match="speaker's permission"):  # noqa: PT011 - gradio_client's AppError
        bo.predict("Ana Voice", "", "Auto", api_name="/create_profile")  # several people here: consent first
    mine = bo.predict("Ana Voice", "", "Auto", True, api_name="/create_profile")  # names are per person
    assert mine["name"] == "Ana Voice" and mine["id"] != IDS["profile"]
    bo.predict(mine["id"], api_name="/delete_profile")  # the page test expects bo to have none
