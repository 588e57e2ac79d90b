class KdedgeError(Exception):
    """An error the user can fix; the message names what to fix. The CLI prints it without a traceback."""
