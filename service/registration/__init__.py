"""The ``/v1/models`` resource: registering models, reading them, their evaluation sets."""
