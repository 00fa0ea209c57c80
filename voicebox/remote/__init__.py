"""The remote speech backend: voicebox as the studio, vLLM-Omni servers doing the model work.

``VOICEBOX_BACKEND=remote`` builds :class:`~voicebox.remote.backend.RemoteBackend`, one more
:class:`~voicebox.speech.SpeechBackend`. Its parts, one concern each:

* :mod:`.protocol` - the wire format (vLLM-Omni 0.30.0's ``/v1/audio/speech``): request bodies and
  response parsing; ``docs/remote-protocol.md`` says what was read where;
* :mod:`.router` - several servers: least-outstanding-requests choice, health checks, back-off;
* :mod:`.voices` - the remote analogue of the voice-prompt cache (the server's voice registry);
* :mod:`.backend` - the backend itself: chunks in flight concurrently, yielded in order.
"""
