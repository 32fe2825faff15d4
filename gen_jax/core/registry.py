"""A tiny name -> object registry shared by nets, losses, schedules, samplers and methods.

Registries are plain dicts filled at import time by a decorator that refuses duplicate
names, so a typo in a config fails with the list of valid choices instead of silently
falling back to a default.

    LOSSES = Registry("loss")

    @LOSSES.register("mse")
    def mse(prediction, target): ...

    LOSSES.get("mse")   # -> the function
    LOSSES.get("mes")   # KeyError: unknown loss 'mes'; choose one of: mse
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
  """A name that is not registered; the message lists the registered ones."""

  def __str__(self) -> str:  # KeyError would quote the message
    return str(self.args[0])


class Registry(Generic[T]):
  """A named mapping from strings to objects, filled once at import time."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    """Decorator that adds its target under `name`; a second use of a name is an error."""

    def decorator(obj: T) -> T:
      self.add(name, obj)
      return obj

    return decorator

  def add(self, name: str, obj: T) -> None:
    if not isinstance(name, str) or not name:
      raise ValueError(f"A {self.kind} name must be a non-empty string, got {name!r}.")
    if name in self._entries:
      raise ValueError(
          f"A {self.kind} named {name!r} is already registered "
          f"({self._entries[name]!r}); pick another name.")
    self._entries[name] = obj

  def get(self, name: str) -> T:
    try:
      return self._entries[name]
    except KeyError:
      raise UnknownNameError(
          f"Unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._entries))}."
      ) from None

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(sorted(self._entries))

  def __len__(self) -> int:
    return len(self._entries)

  def __repr__(self) -> str:
    return f"Registry({self.kind!r}, {self.names()})"
