"""One provider per module; imported lazily by :func:`sessionstore.open_store`."""
