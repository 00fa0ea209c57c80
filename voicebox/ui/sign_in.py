"""Who is using the page, said at the top, and the sign-in a public server asks for.

Under the header a line says whose library this is (an account, a Hugging Face account, this
browser's anonymous library, or nothing on a one-person studio), with the way out: *Log out* for
a login, Gradio's "Sign in with Hugging Face" button when the Space has OAuth on.

A public server that does not know the visitor (:mod:`voicebox.identity`: Hugging Face sign-in
without anonymous libraries, or a browser that refuses cookies) shows a short explanation instead
of the studio: every tab would only answer "sign in first", so the tabs are hidden until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..auth import has_login, public
from ..identity import SignInRequired, Visitor
from .common import UIContext, escape


@dataclass
class SignIn:
    """The components :func:`build` made: the who-line, the gate, and the column of the studio
    that the gate replaces."""

    who: gr.HTML
    gate: gr.HTML
    login: gr.LoginButton | None


def who_html(visitor: Visitor, settings: Any) -> str:
    """The line under the header for ``visitor`` ("" for the one local user)."""
    if visitor.kind == "account":
        return (f'<p class="vb-who">Signed in as <strong>{escape(visitor.name)}</strong>. Your voices, '
                'takes and projects are yours alone. <a href="logout">Log out</a></p>')
    if visitor.kind == "huggingface":
        return (f'<p class="vb-who">Signed in with Hugging Face as <strong>{escape(visitor.name)}</strong>. '
                "Your voices, takes and projects are yours alone.</p>")
    if visitor.kind == "anonymous":
        days = f"{settings.anonymous_days:g}"
        also = " or sign in with Hugging Face" if settings.hf_sign_in else ""
        return (f'<p class="vb-who">Your library is private to this browser. It is erased after {days} days '
                f"without a visit: download it from <em>Your data</em> (bottom of the page){also} to keep it.</p>")
    return ""


def gate_html(settings: Any) -> str:
    """What a public server shows a visitor it does not know, in place of the studio."""
    reason = escape(SignInRequired(settings).message)
    return (
        '<div class="vb-gate" role="status"><h2>Your own private voice studio</h2>'
        f"<p>{reason}</p><p>Voices, takes and projects you make here are seen by you alone: nobody "
        "else can list, play, download or use them, and you can download or erase all of it at any "
        "time.</p></div>"
    )


def build(ctx: UIContext) -> SignIn:
    """The who-line and, on a Space with OAuth, the sign-in button (its presence is what makes
    Gradio add the ``/login/huggingface`` routes); the gate starts hidden."""
    shown = public(ctx.settings) or has_login(ctx.settings)  # a one-person studio says nothing here
    with gr.Row(elem_id="vb-identity", equal_height=True, visible=shown):
        who = gr.HTML("", elem_id="vb-who", padding=False)
        login = gr.LoginButton(size="sm", scale=0, min_width=220) if ctx.settings.hf_sign_in else None
    gate = gr.HTML(gate_html(ctx.settings), elem_id="vb-gate", visible=False, padding=False)
    return SignIn(who, gate, login)


def on_page_load(ctx: UIContext, request: Any) -> tuple[Visitor, Any, Any, Any]:
    """For the page-load event: (visitor, the who-line's update, the gate's, the studio's)."""
    visitor = ctx.visitor(request)
    who = who_html(visitor, ctx.settings)
    return (
        visitor,
        gr.update(value=who, visible=bool(who)),
        gr.update(visible=not visitor.known),
        gr.update(visible=visitor.known),
    )
