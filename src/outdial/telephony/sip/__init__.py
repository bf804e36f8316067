"""The SIP carrier: sippy for signalling (in its own reactor thread), asyncio RTP for media.

Everything here needs the ``sip`` extra (sippy, g722) and, for speech, the ``speech`` extra.
"""
