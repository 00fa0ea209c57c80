"""Entry point for ``python app.py`` and Hugging Face Spaces.

On a Space (``SPACE_ID`` is set) this builds the Gradio app with GPU-bound calls wrapped for
ZeroGPU and keeps ``demo.launch()`` as the entry, as Spaces expects. Anywhere else it is the same
as ``python -m voicebox``: UI and REST API on http://127.0.0.1:7860.
"""

import sys

from voicebox.hf_spaces import on_spaces

if on_spaces():
    from voicebox.hf_spaces import build_spaces_app

    demo, launch_kwargs, _studio = build_spaces_app()
    demo.launch(**launch_kwargs)
elif __name__ == "__main__":
    from voicebox.cli import main

    sys.exit(main(sys.argv[1:]))
