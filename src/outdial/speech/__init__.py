"""Speech engines: text to speech, speech recognition, voice activity and language detection.

Engines sit behind small base classes (``TtsEngine``, ``AsrEngine``) that own caching and
metrics; an engine implements only ``_impl``. The numeric and engine libraries (numpy, soxr,
pocketsphinx, lingua) are the ``speech`` extra: importing an engine without them raises
``SpeechUnavailable`` with the install command.
"""
