"""The dialer: turns tasks into calls, paced, on schedule and crash-safe."""
