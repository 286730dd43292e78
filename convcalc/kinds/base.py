"""What every calculator kind is made of, and the registry that holds them.

A *kind* is the calculator's half of a layer type (the engine has the other half, in
``engine/``): for the spec models it declares it says how many inputs a layer takes,
its **rule** — from the input states to an immutable :class:`Outcome` (output shape,
receptive field, parameters, buffers, MACs and the window geometry it resolved) — and
its **cost**, the memory one example of a :func:`convcalc.verify` run needs for it
(:class:`Cost`, read by :mod:`convcalc.memory`).

A kind registers itself by subclassing :class:`Kind` with ``models`` set; a model
without a kind, or a kind without a rule or a cost, fails loudly (never costs zero):

>>> from convcalc.spec import ReLU
>>> kind_of(ReLU).min_inputs, kind_of(ReLU).max_inputs
(1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

from ..axes import AxisCountError, Window, resolve_window
from ..receptive import ReceptiveField
from ..spec import LayerBase

Shape = tuple[int, ...]


class State(NamedTuple):
    """What flows along an edge of the graph: a shape (channels first, without the
    batch) and the receptive field of each of its positions."""

    shape: Shape
    field: ReceptiveField


class Outcome(NamedTuple):
    """A rule's result for one layer (everything per example)."""

    shape: Shape
    field: ReceptiveField
    params: int = 0
    buffers: int = 0
    macs: int = 0
    #: the window geometry the rule resolved (windowed kinds only)
    window: Window | None = None


@dataclass(frozen=True)
class Cost:
    """Memory of one layer in a verify run, in values per example (``masks`` in bytes).

    - ``kept``: arrays the layer keeps until the run ends (caches, workspaces);
    - ``columns``: the part of ``kept`` that is im2col columns or Winograd tiles;
    - ``masks``: boolean arrays (1 byte a value);
    - ``transient``: the temporaries of this layer alone (the largest over the layers
      counts);
    - ``transformed``: Winograd's transformed filters, ``36·F·C`` values, not per
      example.
    """

    kept: int = 0
    columns: int = 0
    masks: int = 0
    transient: int = 0
    transformed: int = 0


class Fatal(Exception):
    """This layer's output cannot be computed; layers that read it are skipped."""


#: (severity, message, option, details) → None: where a rule's problems go.
Sink = Callable[[str, str, "str | None", dict[str, Any]], None]


class Context:
    """What a rule needs besides the layer and its inputs: the rounding that applies
    (the layer's own ``rounding`` when it has one, else the spec's; ``declared`` when it
    is the layer's), and a sink for its problems (located by the analysis).

    Every independent problem of a layer is reported before it gives up: a problem that
    leaves the output uncomputable is reported with :meth:`fail`, which marks the layer
    ``failed`` (and its option ``flagged``) and lets the checks go on; the analysis
    fails the layer once its checks are done.  :meth:`fatal` does the same and returns
    the :class:`Fatal` to raise where nothing further can be checked.  ``dims`` is the
    number of spatial axes of the (first) input, ``None`` while it is unknown (in
    :meth:`Kind.static_problems` of a layer whose input is unknown)."""

    __slots__ = ("rounding", "declared", "_sink", "dims", "failed", "flagged")

    def __init__(self, rounding: str, sink: Sink, declared: bool = False):
        self.rounding = rounding
        self.declared = declared
        self._sink = sink
        self.dims: int | None = None
        self.failed = False
        self.flagged: tuple[str | None, ...] = ()

    @classmethod
    def of(cls, layer: Any, rounding: str, sink: Sink) -> "Context":
        """The context of ``layer`` in a spec whose rounding is ``rounding``."""
        # its __dict__, not getattr(layer, "rounding"): a pydantic model without the
        # field would answer through its slow __getattr__ (an exception per layer)
        own = getattr(layer, "__dict__", {}).get("rounding")
        return cls(own or rounding, sink, own is not None)

    def error(self, message: str, option: str | None = None, **details: Any) -> None:
        self._sink("error", message, option, details)

    def warn(self, message: str, option: str | None = None, **details: Any) -> None:
        self._sink("warning", message, option, details)

    def note(self, message: str, option: str | None = None, **details: Any) -> None:
        """What a layer does as its options declare it (a rounding, a misalignment):
        reported, but not a warning (``--strict`` accepts it)."""
        self._sink("note", message, option, details)

    def fail(self, message: str, option: str | None = None, **details: Any) -> None:
        """Report an error that leaves the output uncomputable, and go on checking: the
        layer fails when its checks are done."""
        self.error(message, option, **details)
        self.failed = True
        self.flagged += (option,)

    def fatal(self, message: str, option: str | None = None, **details: Any) -> Fatal:
        """Report an error and return the exception to raise: ``raise ctx.fatal(...)``."""
        self.fail(message, option, **details)
        return Fatal()

    def stop(self) -> None:
        """Raise :class:`Fatal` if a problem failed the layer (past the checks that
        can still be made)."""
        if self.failed:
            raise Fatal()

    def window(self, layer: Any, sizes: Shape, stride: Any) -> Window:
        """The layer's window options resolved for spatial ``sizes`` (a per-axis list
        of the wrong length is fatal, naming its option)."""
        try:
            return resolve_window(layer.kernel, stride, layer.dilation, layer.padding, sizes)
        except AxisCountError as error:
            raise self.fatal(str(error), error.option) from None


def spatial(ctx: Context, shape: Shape) -> Shape:
    """The spatial sizes of a feature map ``(C, *spatial)``; a flat input is fatal."""
    if len(shape) < 2:
        raise ctx.fatal(f"needs a feature map with spatial axes, but its input is a flat "
                        f"vector {list(shape)}")
    return shape[1:]


def size_of(shape: Shape) -> int:
    """Values in one example of ``shape``."""
    count = 1
    for n in shape:
        count *= n
    return count


class Kind:
    """Base of the calculator's kinds; see the module docstring.

    Subclasses set ``models`` (the spec models they compute), optionally the number of
    inputs they take (``min_inputs``, ``max_inputs``; ``None``: no upper bound), and
    implement :meth:`rule` and :meth:`cost`.
    """

    models: ClassVar[tuple[type[LayerBase], ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for model in cls.__dict__.get("models", ()):
            if model in REGISTRY:
                raise TypeError(f"{model.__name__} has two calculator kinds: "
                                f"{type(REGISTRY[model]).__name__} and {cls.__name__}")
            REGISTRY[model] = cls()

    def static_problems(self, layer: Any, ctx: Context) -> None:
        """Report the problems of ``layer`` that do not depend on its input's shape
        (``groups`` that do not divide ``filters``, per-axis lists of different
        lengths, …).  The analysis runs it for every layer, before the rule, and also
        when the input is unknown — after a layer that failed, or one that did not
        validate — with ``ctx.dims`` ``None`` then.  A problem reported with
        :meth:`Context.fail` fails the layer; the rule still runs (for the problems that
        depend on the shape), never repeats these checks, and sees ``ctx.flagged``.
        Kinds without such checks need nothing."""

    def rule(self, layer: Any, inputs: tuple[State, ...], ctx: Context) -> Outcome:
        """The outcome of ``layer`` on ``inputs``; report problems through ``ctx`` (raise
        ``ctx.fatal(...)`` when the output cannot be computed)."""
        raise NotImplementedError(f"{type(self).__name__} has no rule")

    def cost(self, layer: Any, row: Any) -> Cost:
        """The memory ``layer`` needs in a verify run, given its report ``row`` (shapes,
        parameters and resolved window)."""
        raise NotImplementedError(f"{type(self).__name__} has no memory cost")


#: spec model class → its kind (filled as the kind modules are imported).
REGISTRY: dict[type[LayerBase], Kind] = {}


class UnknownKind(LookupError):
    """A spec model has no calculator kind."""


def kind_of(model: type[LayerBase] | LayerBase) -> Kind:
    """The kind of a spec model (or of a layer)."""
    cls = model if isinstance(model, type) else type(model)
    try:
        return REGISTRY[cls]
    except KeyError:
        raise UnknownKind(f"the calculator has no kind for {cls.__name__}") from None
