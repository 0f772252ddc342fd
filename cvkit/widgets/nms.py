"""NMS explorer: watch greedy NMS and Soft-NMS pick boxes over a photo, one iteration at a time.

Greedy NMS (R-CNN, Girshick et al. 2014) repeats two steps until no box is left: keep the best box still
in play, then suppress every remaining box whose IoU with it is strictly greater than the threshold.
Soft-NMS (Bodla et al. 2017) selects the same way but decays the scores of the overlapping boxes instead
of removing them (eq. 2 linear, eq. 3 gaussian).

The iterations are read off the package's own results (:func:`cvkit.nms`, :func:`cvkit.soft_nms`), so
the explorer always shows what those functions do: :func:`nms_steps` and :func:`soft_nms_steps` say, for
each box kept, which boxes leave at that iteration and what every score is afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from torch import Tensor

from cvkit.boxes import box_iou
from cvkit.datasets import Photo, load_photo
from cvkit.nms import nms, soft_nms, soft_nms_decay
from cvkit.viz import draw_boxes, keep_labels_inside, show_image
from cvkit.widgets._figure import FigureOutput, batch_update

METHODS = ("hard", "linear", "gaussian")
KEPT, REMOVED, PENDING = "#3cb44b", "#e6194b", "#d0d0d0"
LABEL_SCORE = 0.2          # Soft-NMS keeps many boxes with tiny scores: only scores from here up are written


@dataclass
class NMSStep:
    """One iteration of NMS: the box selected, the boxes that leave with it, every score afterwards."""

    selected: int          # index of the box kept at this iteration
    score: float           # its score when selected (its decayed score, for Soft-NMS)
    removed: list[int]     # boxes that leave at this iteration: suppressed, or decayed below score_threshold
    ious: list[float]      # IoU of each removed box with the selected one
    scores: Tensor         # [N] every box's score after this iteration (Soft-NMS decays them; hard NMS does not)


def _candidates(scores: Tensor, score_threshold: float) -> Tensor:
    return torch.nonzero(scores >= score_threshold).flatten()


def nms_steps(boxes: Tensor, scores: Tensor, iou_threshold: float, score_threshold: float = 0.0) -> list[NMSStep]:
    """The iterations of greedy NMS, one per kept box, in the order :func:`cvkit.nms` keeps them.

    Boxes scoring below ``score_threshold`` are dropped before NMS starts. At the iteration of kept box
    ``k``, the boxes still in play whose IoU with ``k`` is > ``iou_threshold`` are suppressed.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy.
        scores: ``Tensor[N]``.
        iou_threshold: suppress when IoU > this.
        score_threshold: drop boxes scoring below this first.

    Returns:
        One :class:`NMSStep` per kept box.
    """
    candidates = _candidates(scores, score_threshold)
    keep = candidates[nms(boxes[candidates], scores[candidates], iou_threshold)].tolist()
    iou = box_iou(boxes, boxes).double()                                     # [N, N]; compared in double, as nms does
    in_play = torch.zeros(len(scores), dtype=torch.bool)
    in_play[candidates] = True
    in_play[keep] = False                                                    # kept boxes are never suppressed
    steps = []
    for k in keep:
        victims = in_play & (iou[k] > iou_threshold)
        in_play &= ~victims
        removed = victims.nonzero().flatten().tolist()
        steps.append(NMSStep(k, float(scores[k]), removed, iou[k, removed].tolist(), scores.clone()))
    for j in in_play.nonzero().flatten().tolist():   # never expected: box_iou computes IoU as nms does
        i = max(range(len(keep)), key=lambda i: float(iou[keep[i], j]))
        steps[i].removed.append(j)
        steps[i].ious.append(float(iou[keep[i], j]))
    return steps


def soft_nms_steps(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
                   score_threshold: float = 0.001, method: str = "gaussian") -> list[NMSStep]:
    """The iterations of Soft-NMS, one per box :func:`cvkit.soft_nms` selects, in its order.

    After each selection the scores of the boxes still in play are decayed by their IoU with the selected
    box; the boxes whose score falls below ``score_threshold`` leave. Arguments as :func:`cvkit.soft_nms`.
    """
    keep, _ = soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, method)
    iou = box_iou(boxes, boxes)
    current = scores.clone()
    in_play = torch.zeros(len(scores), dtype=torch.bool)
    in_play[_candidates(scores, score_threshold)] = True
    steps = []
    for m in keep.tolist():
        selected_score = float(current[m])
        in_play[m] = False
        current[in_play] = current[in_play] * soft_nms_decay(iou[m, in_play], method, iou_threshold, sigma)
        gone = in_play & (current < score_threshold)
        in_play &= ~gone
        removed = gone.nonzero().flatten().tolist()
        steps.append(NMSStep(m, selected_score, removed, iou[m, removed].tolist(), current.clone()))
    return steps


@dataclass
class NMSState:
    """Where NMS stands after some iterations."""

    iteration: int         # how many iterations are done
    total: int             # how many there are in all
    kept: Tensor           # [K] int64, the boxes kept so far, in the order kept
    kept_scores: Tensor    # [K] their scores when kept
    removed: Tensor        # int64, the boxes that have left (dropped for their score, or suppressed)
    pending: Tensor        # int64, the boxes not decided yet
    current_scores: Tensor  # [N] every box's score now (decayed, in Soft-NMS)
    last: NMSStep | None   # the iteration just done (None before the first and after the last)


def nms_state(steps: list[NMSStep], scores: Tensor, iteration: int, score_threshold: float = 0.0) -> NMSState:
    """The state after ``iteration`` of the ``steps`` (0: nothing done yet; ``len(steps)``: the result).

    Args:
        steps: from :func:`nms_steps` or :func:`soft_nms_steps`.
        scores: ``Tensor[N]`` the scores the steps were computed from.
        iteration: between 0 and ``len(steps)``.
        score_threshold: the one the steps were computed with (boxes below it were dropped at the start).
    """
    if not 0 <= iteration <= len(steps):
        raise ValueError(f"iteration must be between 0 and {len(steps)}, got {iteration}")
    done = steps[:iteration]
    dropped = torch.nonzero(scores < score_threshold).flatten().tolist()
    kept = torch.tensor([s.selected for s in done], dtype=torch.int64)
    removed = torch.tensor(dropped + [j for s in done for j in s.removed], dtype=torch.int64)
    decided = torch.zeros(len(scores), dtype=torch.bool)
    decided[kept] = True
    decided[removed] = True
    return NMSState(iteration, len(steps), kept, torch.tensor([s.score for s in done], dtype=torch.float32),
                    removed, torch.nonzero(~decided).flatten(),
                    done[-1].scores.clone() if done else scores.clone(),
                    done[-1] if 0 < iteration < len(steps) else None)


def draw_nms_state(ax: Axes, image, boxes: Tensor, state: NMSState, soft: bool = False,
                   title: str | None = None) -> Axes:
    """Draw ``state`` over ``image``: kept boxes (green, with their score), the box kept by the last iteration
    (yellow) and the boxes it removed (red dashed, with their IoU with it), boxes removed earlier (faint red
    dots), boxes still in play (grey). With ``soft``, a kept box is the fainter the more its score decayed.
    """
    height, width = image.shape[:2]
    show_image(image, ax=ax, title=title)
    last = state.last
    earlier = [j for j in state.removed.tolist() if last is None or j not in last.removed]
    if earlier:
        draw_boxes(ax, boxes[earlier], colors=REMOVED, linewidth=0.8, linestyle=":", alpha=0.45)
    if len(state.pending):
        draw_boxes(ax, boxes[state.pending], colors=PENDING, linewidth=0.8, alpha=0.7)
    if last is not None and last.removed:
        draw_boxes(ax, boxes[last.removed], colors=REMOVED, linewidth=1.5, linestyle="--",
                   labels=[f"IoU {v:.2f}" for v in last.ious])
    for i, s in zip(state.kept.tolist(), state.kept_scores.tolist()):
        if soft:   # fainter the more the score decayed; scores written from LABEL_SCORE up
            draw_boxes(ax, boxes[i], scores=[s] if s >= LABEL_SCORE else None, colors=KEPT,
                       alpha=max(0.15, min(1.0, s)), linewidth=1 + 2 * s)
        else:
            draw_boxes(ax, boxes[i], scores=[s], colors=KEPT, linewidth=2.5)
    if last is not None:
        draw_boxes(ax, boxes[last.selected], colors="#ffe119", linewidth=3.5)
    handles = [Line2D([], [], color=KEPT, linewidth=2.5, label="kept (score)")]
    if last is not None:
        handles += [Line2D([], [], color="#ffe119", linewidth=3.5, label=f"kept at iteration {state.iteration}"),
                    Line2D([], [], color=REMOVED, linewidth=1.5, linestyle="--", label="removed by it (IoU)")]
    if earlier:
        handles.append(Line2D([], [], color=REMOVED, linewidth=1, linestyle=":", label="removed earlier"))
    if len(state.pending):
        handles.append(Line2D([], [], color=PENDING, linewidth=1, label="still in play"))
    ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    keep_labels_inside(ax)
    return ax


class NMSExplorer:
    """Detections over a photo; sliders for the NMS threshold and the iteration; kept vs suppressed drawn live.

    Args:
        photo: a photo name from :func:`cvkit.datasets.photo_names` or a loaded :class:`Photo`.
        boxes: ``Tensor[N, 4]`` the detections (xyxy), e.g. from :func:`cvkit.datasets.noisy_detections`.
        scores: ``Tensor[N]`` their scores.
        iou_threshold: where the threshold slider starts.
        method: ``'hard'`` (greedy NMS), ``'linear'`` or ``'gaussian'`` (Soft-NMS).
        sigma: where the Gaussian width slider starts.
        score_threshold: where the score slider starts: boxes scoring below it are dropped (before hard NMS;
            whenever their decayed score falls below it, in Soft-NMS).

    Attributes:
        widget: the controls, the label and the figure, for ``display``.
        method: ``ToggleButtons`` choosing ``'hard'``, ``'linear'`` or ``'gaussian'``.
        threshold: ``FloatSlider``, the IoU threshold (hard NMS: suppress when IoU > it; linear: decay when >=).
        sigma: ``FloatSlider``, the Gaussian penalty's width.
        score_threshold: ``FloatSlider``, the lowest score a box may have and stay.
        step: ``IntSlider`` from 0 to the number of iterations; at its maximum the full result is shown.
        label: ``ipywidgets.HTML`` describing the current state.
        steps: the :class:`NMSStep` list for the current settings.
        state: the :class:`NMSState` after ``step`` iterations; its fields are also attributes:
        kept: ``Tensor[K]`` int64 indices of the boxes kept after ``step`` iterations, in the order kept.
        kept_scores: ``Tensor[K]`` their scores when they were kept.
        removed: ``Tensor`` int64 indices of the boxes that have left (suppressed or below the score threshold).
        pending: ``Tensor`` int64 indices of the boxes not decided yet (empty at the last step).
        current_scores: ``Tensor[N]`` every box's score now (decayed, in Soft-NMS).
        figure: the :class:`FigureOutput`; ``figure.figure`` is the last figure drawn.

    Moving the threshold, sigma, score or method keeps showing the full result if it was shown, and
    otherwise stays at the same iteration (as far as the new run has one).
    """

    def __init__(self, photo: str | Photo, boxes: Tensor, scores: Tensor, iou_threshold: float = 0.5,
                 method: str = "hard", sigma: float = 0.5, score_threshold: float = 0.0) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if not (isinstance(boxes, Tensor) and boxes.dim() == 2 and boxes.shape[1] == 4):
            raise ValueError(f"boxes must be a Tensor[N, 4], got {getattr(boxes, 'shape', type(boxes).__name__)}")
        if not (isinstance(scores, Tensor) and scores.shape == boxes.shape[:1]):
            raise ValueError(f"scores must be a Tensor[{boxes.shape[0]}], one per box, "
                             f"got {getattr(scores, 'shape', type(scores).__name__)}")
        self.photo = load_photo(photo) if isinstance(photo, str) else photo
        self.boxes = boxes.detach().cpu().float()
        self.scores = scores.detach().cpu().float()

        def slider(description: str, value: float, low: float, high: float, step: float) -> widgets.FloatSlider:
            return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                                       continuous_update=False, readout_format=".2f",
                                       layout=widgets.Layout(width="300px"))

        self.method = widgets.ToggleButtons(options=[("hard NMS", "hard"), ("Soft-NMS linear", "linear"),
                                                     ("Soft-NMS gaussian", "gaussian")], value=method)
        self.threshold = slider("IoU thresh.", iou_threshold, 0.0, 1.0, 0.05)
        self.sigma = slider("sigma", sigma, 0.05, 2.0, 0.05)
        self.score_threshold = slider("min score", score_threshold, 0.0, 0.95, 0.05)
        self.step = widgets.IntSlider(value=0, min=0, max=0, description="iteration", continuous_update=False,
                                      layout=widgets.Layout(width="420px"))
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(7, 7))
        self.steps: list[NMSStep] = []
        self._holding = False
        self._recompute(to_end=True)

        for control in (self.method, self.threshold, self.sigma, self.score_threshold):
            control.observe(lambda _change: self._recompute(to_end=self.step.value == self.step.max), names="value")
        self.step.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([
            self.method,
            widgets.HBox([self.threshold, self.sigma, self.score_threshold]),
            self.step,
            self.label,
            self.figure.output,
        ])

    def _recompute(self, to_end: bool) -> None:
        """Run NMS for the current settings, set the step slider's range and update."""
        method = self.method.value
        if method == "hard":
            self.steps = nms_steps(self.boxes, self.scores, self.threshold.value, self.score_threshold.value)
        else:
            self.steps = soft_nms_steps(self.boxes, self.scores, self.threshold.value, self.sigma.value,
                                        self.score_threshold.value, method)
        self.threshold.disabled = method == "gaussian"          # eq. 3 has no threshold
        self.sigma.disabled = method != "gaussian"
        with batch_update(self):
            self.step.max = len(self.steps)                       # clamps the value if it was beyond
            if to_end:
                self.step.value = self.step.max

    def update(self) -> None:
        """Read the step slider, set ``state`` (and ``kept``, ``removed``, ...), rewrite the label and redraw."""
        if self._holding:
            return
        self.state = nms_state(self.steps, self.scores, self.step.value, self.score_threshold.value)
        self.kept, self.kept_scores = self.state.kept, self.state.kept_scores
        self.removed, self.pending = self.state.removed, self.state.pending
        self.current_scores = self.state.current_scores

        k, n = self.step.value, len(self.scores)
        name = {"hard": f"hard NMS (suppress IoU &gt; {self.threshold.value:.2f})",
                "linear": f"Soft-NMS linear (decay where IoU &ge; {self.threshold.value:.2f})",
                "gaussian": f"Soft-NMS gaussian (sigma = {self.sigma.value:.2f})"}[self.method.value]
        text = (f"<b>{name}</b>: iteration {k} of {len(self.steps)} &nbsp; kept {len(self.kept)}, "
                f"removed {len(self.removed)}, still in play {len(self.pending)} (of {n} boxes)")
        if k > 0:
            last = self.steps[k - 1]
            text += (f"<br>iteration {k} keeps box {last.selected} (score {last.score:.2f}) and removes "
                     f"{len(last.removed)} box{'es' if len(last.removed) != 1 else ''}")
        self.label.value = text
        self.figure.redraw(lambda fig: self.draw(fig.add_subplot(1, 1, 1)))

    def draw(self, ax: Axes, title: str | None = None) -> Axes:
        """Draw the current state on ``ax`` (see :func:`draw_nms_state`), titled with the settings."""
        k, method = self.step.value, self.method.value
        if title is None:
            rule = {"hard": f"hard NMS, IoU > {self.threshold.value:.2f}",
                    "linear": f"Soft-NMS linear, N_t = {self.threshold.value:.2f}",
                    "gaussian": f"Soft-NMS gaussian, sigma = {self.sigma.value:.2f}"}[method]
            stage = "result" if k == len(self.steps) else f"after {k} of {len(self.steps)} iterations"
            title = f"{rule}: {stage}, {len(self.kept)} kept"
        return draw_nms_state(ax, self.photo.image, self.boxes, self.state, soft=method != "hard", title=title)


__all__ = ["NMSExplorer", "NMSState", "NMSStep", "draw_nms_state", "nms_state", "nms_steps", "soft_nms_steps"]
