"""Model engines: code that runs models, and nothing else (no UI, no store).

``tts`` wraps Qwen3-TTS, ``asr`` wraps faster-whisper, ``prompt_cache`` keeps voice prompts.
"""
