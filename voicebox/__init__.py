"""voicebox: a voice-cloning studio on Qwen3-TTS with Whisper transcription.

The package is layered so data flows one way: the UI (``voicebox.ui``) and the REST API
(``voicebox.api``) call the service layer (``voicebox.services``), which alone combines the
store (``voicebox.store``), the audio pipeline (``voicebox.audio``) and the model engines
(``voicebox.engines``).
"""

__version__ = "0.1.0"
