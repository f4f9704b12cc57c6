"""Parameters and the Module base class: parameters, buffers, state_dict, train/eval.

The contract every layer keeps (see docs/architecture.md):

* ``forward(x) -> (out, cache)``: the cache holds what the backward needs. It is
  returned, never stored on the layer, because one layer may run several times in one
  step (the RPN head runs once per pyramid level) and each call needs its own cache.
* ``backward(dout, cache) -> dx``: adds the parameter gradients into ``Parameter.grad``
  with ``+=`` -- a weight used on several calls receives the sum of their gradients,
  which is exactly the multivariable chain rule.

``state_dict()`` keys and order follow torch.nn.Module: a module's own parameters, then
its buffers, then its children in registration order, joined with dots.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, Mapping

import numpy as np


class Parameter:
    """A trainable array and its gradient.

    Attributes:
        data (float[...]): the value, float32 by default.
        grad (float[...]): same shape and dtype as ``data``; accumulated with ``+=``.
        requires_grad (bool): ``False`` freezes it (backward skips it, the optimizer too).
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.requires_grad = requires_grad

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, requires_grad={self.requires_grad})"


def summarize(items: list, first: int = 3) -> str:
    """'(N): a, b, c and N-3 more': a key list short enough for one error paragraph."""
    shown = ", ".join(str(item) for item in items[:first])
    more = f" and {len(items) - first} more" if len(items) > first else ""
    return f"({len(items)}): {shown}{more}"


class Module:
    """Base class: registers Parameters, buffers and child Modules by attribute name."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------
    def __setattr__(self, name, value):
        """Register Parameters and Modules by attribute name; keep buffers registered.

        As in torch: assigning an array to a buffer's name replaces the buffer's value and
        keeps it in the state_dict (``self.running_mean = new_mean``); a Parameter or a
        Module moves the name to that registry. Assigning anything else over a
        Parameter, buffer or child Module is a TypeError instead of a silent unregistering.
        """
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if isinstance(value, (Parameter, Module)):
            for registry in (self._parameters, self._modules, self._buffers):
                registry.pop(name, None)
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        elif name in self._buffers:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer '{name}' of "
                                f"{type(self).__name__} (a numpy array expected)")
            self._buffers[name] = value
        elif name in self._parameters or name in self._modules:
            kind = "parameter" if name in self._parameters else "child module"
            expected = "a Parameter; to change its value assign to .data" if kind == "parameter" else "a Module"
            raise TypeError(f"cannot assign {type(value).__name__} to {kind} '{name}' of "
                            f"{type(self).__name__} ({expected})")
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """A non-trainable array saved in the state_dict (e.g. BatchNorm running stats).

        Later plain assignments (``self.name = array``) keep it registered, as in torch.
        """
        if not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer: '{name}' must be a numpy array, got {type(array).__name__}")
        if name not in self._buffers and hasattr(self, name):
            raise KeyError(f"register_buffer: attribute '{name}' already exists on {type(self).__name__}")
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def add_module(self, name: str, module: "Module") -> None:
        self.__setattr__(name, module)

    # -- traversal ----------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name in module._buffers:
                yield (f"{module_name}.{name}" if module_name else name), getattr(module, name)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> "Module":
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def astype(self, dtype) -> "Module":
        """Cast every floating parameter and buffer (e.g. to float64 for gradient checks)."""
        for _, module in self.named_modules():
            for p in module._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = np.zeros_like(p.data)
            for name, buf in list(module._buffers.items()):
                if np.issubdtype(buf.dtype, np.floating):
                    setattr(module, name, buf.astype(dtype))
        return self

    # -- state_dict ---------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, keyed as torch.nn.Module.state_dict()."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                state[dot + name] = p.data.copy()
            for name in module._buffers:
                state[dot + name] = np.array(getattr(module, name), copy=True)
        return state

    def load_state_dict(self, mapping: Mapping[str, np.ndarray], strict: bool = True) -> tuple[list, list]:
        """Copy arrays from ``mapping`` into the parameters and buffers, in place, all or nothing.

        Values keep this module's dtypes. Every problem is gathered into one ``ValueError``
        and then nothing is loaded: missing and unexpected keys (with ``strict=True``),
        shape mismatches, arrays that are not real numbers (strings, objects, complex) and
        float arrays holding NaN or infinity (even with ``strict=False``).
        Long key lists are summarised: the first few of each kind, then the count.

        Returns:
            (missing_keys, unexpected_keys)
        """
        targets = OrderedDict()
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for name in module._parameters:
                targets[dot + name] = (module, name, True)
            for name in module._buffers:
                targets[dot + name] = (module, name, False)
        missing = [k for k in targets if k not in mapping]
        unexpected = [k for k in mapping if k not in targets]
        mismatched, not_numeric, non_finite, staged = [], [], [], {}
        for key, (module, name, is_param) in targets.items():
            if key not in mapping:
                continue
            current = module._parameters[name].data if is_param else getattr(module, name)
            given = np.asarray(mapping[key])
            if given.dtype.kind not in "biuf":       # bool, int, uint, float; not str, bytes, object, complex
                not_numeric.append(f"{key}: expected real numbers, got dtype {given.dtype}")
            elif tuple(given.shape) != tuple(current.shape):
                mismatched.append(f"{key}: expected shape {tuple(current.shape)}, got {tuple(given.shape)}")
            elif given.dtype.kind == "f" and not np.isfinite(given).all():   # would give silent NaN outputs
                bad = int(np.count_nonzero(~np.isfinite(given)))
                non_finite.append(f"{key}: {bad} of {given.size} values NaN or infinite")
            else:
                staged[key] = given.astype(current.dtype, copy=True)     # converted before anything is set
        problems = []
        if strict and missing:
            problems.append(f"missing keys {summarize(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys {summarize(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches {summarize(mismatched)}")
        if not_numeric:
            problems.append(f"non-numeric arrays {summarize(not_numeric)}")
        if non_finite:
            problems.append(f"non-finite arrays {summarize(non_finite)}")
        if problems:
            matched = len(targets) - len(missing)
            raise ValueError(f"Error(s) in loading state_dict for {type(self).__name__} ({matched} of its "
                             f"{len(targets)} keys found, {len(staged)} loadable; nothing was loaded):\n  "
                             + ";\n  ".join(problems))
        for key, value in staged.items():
            module, name, is_param = targets[key]
            if is_param:
                param = module._parameters[name]
                param.data = np.ascontiguousarray(value)
                param.grad = np.zeros_like(param.data)
            else:
                setattr(module, name, value)   # stays a registered buffer (see __setattr__)
        return missing, unexpected

    # -- computation --------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, dout, cache):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")


class Sequential(Module):
    """Children run in order; the cache is the list of the children's caches."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        caches = []
        for module in self._modules.values():
            x, cache = module.forward(x)
            caches.append(cache)
        return x, caches

    def backward(self, dout, cache):
        for module, module_cache in zip(reversed(list(self._modules.values())), reversed(cache)):
            dout = module.backward(dout, module_cache)
        return dout


class ModuleList(Module):
    """A list of Modules registered under "0", "1", ...; it has no forward of its own."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> None:
        self.add_module(str(len(self._modules)), module)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
