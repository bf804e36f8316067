"""AI speech templates: the format, its validation and (later) the conversation engine."""
