"""Per-chunk quality checks (issue #14): does a chunk of generated speech say the asked words, in
the profile's voice, at a sane pace, without long silences, clipping or a loudness jump?

Use :class:`QualityGate` (``score`` a chunk, ``score_file`` any upload); it returns a
:class:`ChunkScore` of :class:`Check` records. The modules, one concern each:

* :mod:`.text` - the language-aware normalisation, the character error rate, letters to say;
* :mod:`.signal` - speech span, silences, clipping, loudness;
* :mod:`.speaker` - speaker embeddings (Resemblyzer, weights from its wheel);
* :mod:`.voice` - the profile's voice (:class:`VoiceRef`) and its cached embedding and pace;
* :mod:`.thresholds` - the calibrated limits (README "Quality checks");
* :mod:`.checks` - a measurement judged and explained in plain words;
* :mod:`.scores` - the records and the combined score that picks the best take;
* :mod:`.gate` - runs it all for one chunk.
"""

from .gate import QualityGate
from .scores import CHECK_NAMES, Check, ChunkScore
from .signal import level_db
from .speaker import SpeakerEncoder
from .thresholds import Thresholds
from .voice import VoiceRef

__all__ = [
    "CHECK_NAMES",
    "Check",
    "ChunkScore",
    "QualityGate",
    "SpeakerEncoder",
    "Thresholds",
    "VoiceRef",
    "level_db",
]
