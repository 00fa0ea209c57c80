"""A Space with ``hf_oauth: true``, simulated with the environment the platform sets, builds
"Sign in with Hugging Face" and gives each Hugging Face account its own library.

The app runs as a Space runs it (``voicebox.hf_spaces.build_spaces_app`` and ``demo.launch``) in
a child process, because Gradio reads the OAuth variables once, when it is imported. Hugging Face
itself is a real OpenID provider on loopback (:mod:`tests.support.fake_hf_oauth`), so Gradio's
own OAuth routes, authlib's checks of the signed id_token and the session cookie all run for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.support.browser import (
    chromium, close_toasts, error_badges, expect, field, screenshot, VIEWPORTS,
)
from tests.support.fake_hf_oauth import FakeHuggingFace
from tests.support.studio import free_port

pytestmark = [pytest.mark.browser]

LAUNCH = """
import sys
from voicebox.hf_spaces import build_spaces_app
demo, launch_kwargs, _ = build_spaces_app()
launch_kwargs["server_name"] = "127.0.0.1"  # the test's Space is reached on loopback only
demo.launch(server_port=int(sys.argv[1]), **launch_kwargs)
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[tuple[str, Path]]:
    """The Space's URL and data folder, with the fake Hugging Face beside it."""
    data = tmp_path_factory.mktemp("space") / "data"
    port = free_port()
    with FakeHuggingFace() as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPACE_", "OAUTH_", "VOICEBOX_"))}
        env.update(hub.env(), SPACE_ID="tester/voicebox", SYSTEM="spaces", VOICEBOX_DATA_DIR=str(data),
                   VOICEBOX_TTS_MODEL=str(tiny_checkpoint), VOICEBOX_DEVICE="cpu", VOICEBOX_QUALITY="off",
                   HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
        log = (data.parent / "space.log").open("w")
        child = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port)], env=env, stdout=log, stderr=log,
                                 cwd=Path(__file__).resolve().parents[1])
        url = f"http://localhost:{port}/"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Space did not start:\n" + (data.parent / "space.log").read_text()[-3000:])
                time.sleep(0.3)
            yield url, data
        finally:
            child.terminate()
            child.wait(30)
            log.close()


def sign_in(browser: Any, url: str, name: str, viewport: str) -> Any:
    """A browser of its own that signs in with Hugging Face as ``name``, as a person would."""
    page = browser.new_context(viewport=VIEWPORTS[viewport]).new_page()
    page.set_default_timeout(90_000)
    page.goto(url)
    check = expect()
    check(page.locator("#vb-gate")).to_contain_text("Sign in with Hugging Face")
    check(page.locator("#vb-tabs")).to_be_hidden()  # nothing to use before signing in
    screenshot(page, f"hf-sign-in-gate-{viewport}")
    page.get_by_role("button", name="Sign in with Hugging Face").click()
    page.get_by_label("Hugging Face username").fill(name)  # the provider's consent page
    page.get_by_role("button", name="Authorize").click()
    check(page.locator("#vb-who")).to_contain_text(f"Signed in with Hugging Face as {name}")
    check(page.get_by_role("button", name=f"Logout ({name})")).to_be_visible()
    check(page.locator("#vb-gate")).to_be_hidden()
    return page


def test_each_hugging_face_account_gets_its_own_library(space: tuple[str, Path]) -> None:
    url, data = space
    check = expect()
    assert httpx.get(f"{url}profiles").status_code == 404  # a Space serves the Gradio app alone, no REST API
    with chromium() as browser:
        alice = sign_in(browser, url, "alice", "desktop")
        check(alice.locator("#profile-empty")).to_contain_text("No profiles yet")
        field(alice, "profile-name").fill("Alice's voice")
        alice.locator("#profile-consent input[type=checkbox]").check()
        alice.locator("#profile-create").click()
        check(alice.locator("#profile-list")).to_contain_text("Alice's voice")
        close_toasts(alice)
        screenshot(alice, "hf-signed-in-desktop")

        bob = sign_in(browser, url, "bob", "phone")
        check(bob.locator("#profile-empty")).to_contain_text("No profiles yet")
        check(bob.get_by_text("Alice's voice")).to_have_count(0)
        screenshot(bob, "hf-signed-in-phone")

        alice.reload()  # the session cookie keeps her signed in
        check(alice.locator("#vb-who")).to_contain_text("as alice")
        check(alice.locator("#profile-list")).to_contain_text("Alice's voice")
        for page in (alice, bob):
            check(error_badges(page)).to_have_count(0)

        bob.get_by_role("button", name="Logout (bob)").click()
        check(bob.locator("#vb-gate")).to_be_visible()
        check(bob.locator("#vb-tabs")).to_be_hidden()
