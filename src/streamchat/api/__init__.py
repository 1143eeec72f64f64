"""The Messages API surface: request validation, stream events, errors. Pure code, no I/O."""
