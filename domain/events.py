"""The aggregates' event classes, looked up by class so read models can dispatch on them."""

from __future__ import annotations

from eventsourcing.domain import Aggregate


def event_class(aggregate: type[Aggregate], name: str) -> type[Aggregate.Event]:
    """The aggregate's event class of that name; a renamed or removed event fails here, at once."""
    found = aggregate.__dict__.get(name)
    if not (isinstance(found, type) and issubclass(found, Aggregate.Event)):
        raise LookupError(f"{aggregate.__qualname__} records no event {name!r}")
    return found


def event_classes(aggregate: type[Aggregate]) -> list[type[Aggregate.Event]]:
    """Every event class the aggregate records (not the base classes they derive from), as declared."""
    own = [
        value
        for value in vars(aggregate).values()
        if isinstance(value, type)
        and issubclass(value, Aggregate.Event)
        and value.__qualname__.startswith(f"{aggregate.__qualname__}.")
    ]
    leaves = [cls for cls in own if not any(other is not cls and issubclass(other, cls) for other in own)]
    # The library declares a default `Created`; an aggregate that names its own never records it.
    created = [cls for cls in leaves if issubclass(cls, Aggregate.Created)]
    if len(created) > 1:
        leaves = [cls for cls in leaves if cls.__name__ != "Created"]
    return leaves
