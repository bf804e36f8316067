"""outdial: a self-hosted AI outbound-calling platform speaking LAAFFIC's AI group-call API."""

__version__ = "0.1.0"
