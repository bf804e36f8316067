"""The operator web console, served by the API app at ``/console``."""
