"""Recurrent layers with backprop through time: Elman RNN (tanh) and LSTM.

Input (B, T, F), initial state zero; output the last hidden state (B, H), or every
step's (B, T, H) with return_sequences. One GEMM projects the inputs of all steps, one
recurrent GEMM per step goes each way, and the weight gradients are one GEMM each; all
buffers are workspace arrays, laid out time-major (T, B, ...). Parameters, as in
torch.nn.RNN/LSTM but transposed and with one bias: weight_ih (F, G*H), weight_hh
(H, G*H), bias (G*H,), G = 1 (RNN) or 4 (LSTM, gates in torch's order: input, forget,
cell, output). Initialised like torch, U(-1/sqrt(H), 1/sqrt(H)), except the LSTM's
forget-gate bias, which starts at 1 (Gers et al. 2000: remember by default).
"""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer, check_positive_ints
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


def sigmoid(x: Array, out: Array) -> Array:
    """1 / (1 + exp(-x)) as (1 + tanh(x/2)) / 2, into out."""
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


class Recurrent(Layer):
    """Shared by RNN and LSTM: the input projection, the time loop, BPTT, the GEMMs."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False):
        check_positive_ints(type(self).__name__, input_size=input_size,
                            hidden_size=hidden_size)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.return_sequences = bool(return_sequences)

    def config(self) -> dict[str, int | bool]:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "return_sequences": self.return_sequences}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        width = self.gates * self.hidden_size
        return {"weight_ih": (self.input_size, width), "weight_hh": (self.hidden_size, width),
                "bias": (width,)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.W_ih, self.W_hh, self.b = params["weight_ih"], params["weight_hh"], params["bias"]
        self.dW_ih, self.dW_hh, self.db = grads["weight_ih"], grads["weight_hh"], grads["bias"]

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        bound = 1.0 / np.sqrt(self.hidden_size)
        for array in (self.W_ih, self.W_hh, self.b):
            array[...] = rng.uniform(-bound, bound, array.shape)

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, T, F) -> out (B, H), or (B, T, H) with return_sequences; the cache holds
        the time-major inputs, pre-activations and states."""
        check(x.ndim == 3 and x.shape[2] == self.input_size and x.shape[1] > 0,
              f"layer {self.name} ({self!r}) expects input (batch, time, {self.input_size}), "
              f"got {x.shape}")
        batch, steps, _ = x.shape
        hidden, width = self.hidden_size, self.gates * self.hidden_size
        xs = ws.array("xs", (steps, batch, self.input_size), x.dtype)
        np.copyto(xs, x.transpose(1, 0, 2))
        acts = ws.array("acts", (steps, batch, width), x.dtype)
        np.matmul(xs.reshape(steps * batch, -1), self.W_ih, out=acts.reshape(steps * batch, -1))
        acts += self.b  # one GEMM for every step's input projection
        hs = ws.array("hs", (steps + 1, batch, hidden), x.dtype)  # hs[0]: the zero state
        hs[0] = 0
        state = self.start(ws, steps, batch, x.dtype)
        recurrent = ws.array("recurrent", (batch, width), x.dtype)
        for t in range(steps):
            acts[t] += np.matmul(hs[t], self.W_hh, out=recurrent)  # the recurrent GEMM
            self.cell_forward(t, acts[t], hs[t + 1], state)
        if not self.return_sequences:
            return hs[steps], (xs, acts, hs, state)
        out = ws.array("out", (batch, steps, hidden), x.dtype)
        np.copyto(out, hs[1:].transpose(1, 0, 2))
        return out, (xs, acts, hs, state)

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        """dout (B, H) or (B, T, H) -> dx (B, T, F); dW_ih (F, GH), dW_hh (H, GH), db (GH,)."""
        xs, acts, hs, state = cache
        steps, batch, _ = xs.shape
        dacts = ws.array("dacts", acts.shape, dout.dtype)  # d(pre-activations), time-major
        dh = ws.array("dh", (batch, self.hidden_size), dout.dtype)
        dh[...] = 0
        carry = self.start_backward(ws, batch, dout.dtype)
        for t in range(steps - 1, -1, -1):
            if self.return_sequences:
                dh += dout[:, t]
            elif t == steps - 1:
                dh += dout
            self.cell_backward(t, dh, acts[t], dacts[t], state, carry)
            np.matmul(dacts[t], self.W_hh.T, out=dh)  # the recurrent GEMM, backwards
        flat = dacts.reshape(steps * batch, -1)
        for name, inputs, target in (("dW_ih", xs, self.dW_ih), ("dW_hh", hs[:steps], self.dW_hh)):
            product = ws.array(name, target.shape, dout.dtype) if accumulate else target
            np.matmul(inputs.reshape(steps * batch, -1).T, flat, out=product)  # one GEMM
            if accumulate:
                target += product
        bias = ws.array("db", self.db.shape, dout.dtype) if accumulate else self.db
        np.sum(flat, axis=0, out=bias)
        if accumulate:
            self.db += bias
        if not need_dx:
            return None
        dxs = np.matmul(flat, self.W_ih.T, out=ws.array("dxs", (steps * batch, self.input_size),
                                                        dout.dtype))
        return dxs.reshape(steps, batch, -1).transpose(1, 0, 2)

    def start(self, ws: Workspace, steps: int, batch: int, dtype: object) -> dict:
        """Per-forward state besides hs (the LSTM's cells), and per-step scratch."""
        return {"tmp": ws.array("tmp", (batch, self.hidden_size), dtype)}

    def start_backward(self, ws: Workspace, batch: int, dtype: object) -> dict:
        """Per-backward carry besides dh (the LSTM's dc), and per-step scratch."""
        return {"tmp": ws.array("dtmp", (batch, self.hidden_size), dtype)}

    def cell_forward(self, t: int, act: Array, h: Array, state: dict) -> None:
        """Step t: pre-activations act (B, GH) -> h (B, H); act keeps the activations."""
        raise NotImplementedError

    def cell_backward(self, t: int, dh: Array, act: Array, dact: Array, state: dict,
                      carry: dict) -> None:
        """Step t: dh (B, H) and the activations act (B, GH) -> dact (B, GH), the gradient
        of the pre-activations."""
        raise NotImplementedError

    def __repr__(self) -> str:
        sequences = ", return_sequences=True" if self.return_sequences else ""
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{sequences})"


class RNN(Recurrent):
    """Elman RNN: h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)."""

    def cell_forward(self, t: int, act: Array, h: Array, state: dict) -> None:
        np.tanh(act, out=act)
        np.copyto(h, act)

    def cell_backward(self, t: int, dh: Array, act: Array, dact: Array, state: dict,
                      carry: dict) -> None:
        np.multiply(act, act, out=dact)
        np.subtract(1, dact, out=dact)
        dact *= dh  # dh (1 - h^2)


class LSTM(Recurrent):
    """LSTM: i, f, o = sigmoid, g = tanh of the four gate blocks; c_t = f c_{t-1} + i g;
    h_t = o tanh(c_t)."""

    gates = 4

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        super().init_params(rng, nonlinearity)
        self.b[self.hidden_size:2 * self.hidden_size] = 1.0  # the forget gate starts open

    def start(self, ws: Workspace, steps: int, batch: int, dtype: object) -> dict:
        cs = ws.array("cs", (steps + 1, batch, self.hidden_size), dtype)  # cs[0]: zero cell
        cs[0] = 0
        return {**super().start(ws, steps, batch, dtype), "cs": cs,
                "tanh_c": ws.array("tanh_c", (steps, batch, self.hidden_size), dtype)}

    def start_backward(self, ws: Workspace, batch: int, dtype: object) -> dict:
        dc = ws.array("dc", (batch, self.hidden_size), dtype)
        dc[...] = 0
        return {**super().start_backward(ws, batch, dtype), "dc": dc,
                "tmp2": ws.array("dtmp2", (batch, self.hidden_size), dtype)}

    def split(self, act: Array) -> tuple[Array, Array, Array, Array]:
        """The input, forget, cell and output blocks of (B, 4H), as views."""
        hidden = self.hidden_size
        return tuple(act[:, k * hidden:(k + 1) * hidden] for k in range(4))

    def cell_forward(self, t: int, act: Array, h: Array, state: dict) -> None:
        i, f, g, o = self.split(act)
        for gate in (i, f, o):
            sigmoid(gate, out=gate)
        np.tanh(g, out=g)
        c_prev, c, tanh_c = state["cs"][t], state["cs"][t + 1], state["tanh_c"][t]
        np.multiply(f, c_prev, out=c)
        np.multiply(i, g, out=state["tmp"])
        c += state["tmp"]  # c_t = f c_{t-1} + i g
        np.tanh(c, out=tanh_c)
        np.multiply(o, tanh_c, out=h)

    def cell_backward(self, t: int, dh: Array, act: Array, dact: Array, state: dict,
                      carry: dict) -> None:
        i, f, g, o = self.split(act)
        di, df, dg, do = self.split(dact)
        tanh_c, c_prev, dc, tmp = state["tanh_c"][t], state["cs"][t], carry["dc"], carry["tmp"]
        np.multiply(dh, tanh_c, out=do)  # d o
        np.multiply(tanh_c, tanh_c, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp  # dc = carried + dh o (1 - tanh^2 c)
        np.multiply(dc, g, out=di)
        np.multiply(dc, i, out=dg)
        np.multiply(dc, c_prev, out=df)
        dc *= f  # carried to step t - 1
        for gate, grad in ((i, di), (f, df), (o, do)):  # through the sigmoids: s (1 - s)
            np.subtract(1, gate, out=carry["tmp2"])
            carry["tmp2"] *= gate
            grad *= carry["tmp2"]
        np.multiply(g, g, out=tmp)  # through the tanh: 1 - g^2
        np.subtract(1, tmp, out=tmp)
        dg *= tmp
