"""One-call plots with matplotlib: a trace, and a space plot of a variable
along the path between two segments (like NEURON's RangeVarPlot).

    from nrnrs import plot
    plot.trace(t, v, label="soma")                  # t, v: Vectors or sequences
    plot.space(soma(0), dend(1), "v")               # now, along soma(0) -> dend(1)
"""


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.gca()


def trace(t, y, ax=None, xlabel="t (ms)", ylabel="v (mV)", **kwargs):
    """Plots y against t on `ax` (default: the current axes); returns the axes."""
    ax = _axes(ax)
    ax.plot(list(t), list(y), **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def _to_root(seg):
    """[(section, x), ...] from seg up to its root section's 0 end."""
    out = [(seg.sec, seg.x)]
    sec = seg.sec
    while True:
        p = sec.parentseg()
        if p is None:
            return out
        out.append((p.sec, p.x))
        sec = p.sec


def path(seg_a, seg_b):
    """The nodes from seg_a to seg_b through the tree, as (distance µm, segment) pairs.

    Distances are measured along the path from seg_a. Each section on the
    path contributes its nodes (segment centres and ends) between where the
    path enters and leaves it.
    """
    up_a, up_b = _to_root(seg_a), _to_root(seg_b)
    secs_b = [s for s, _ in up_b]
    # The first section on a's way up that is also on b's way up.
    for i, (sec, xa) in enumerate(up_a):
        if sec in secs_b:
            j = secs_b.index(sec)
            xb = up_b[j][1]
            legs = up_a[:i] + [(sec, xa, xb)] + list(reversed(up_b[:j]))
            break
    else:
        raise ValueError(f"{seg_a} and {seg_b} are not in the same tree")
    points, dist, last = [], 0.0, None
    for k, leg in enumerate(legs):
        if len(leg) == 3:
            sec, x0, x1 = leg
        elif k < i:  # going up from seg_a: from x to the 0 end
            sec, x0, x1 = leg[0], leg[1], 0.0
        else:  # going down towards seg_b: from the 0 end to x
            sec, x0, x1 = leg[0], 0.0, leg[1]
        xs = [0.0] + [seg.x for seg in sec] + [1.0]
        lo, hi = min(x0, x1), max(x0, x1)
        inside = [x for x in xs if lo <= x <= hi]
        for x in inside if x0 <= x1 else reversed(inside):
            pos = x * sec.L
            if last is not None and last[0] == sec:
                dist += abs(pos - last[1])
            elif points and x in (0.0, 1.0):
                # A section end where the path changes section is the node
                # the path is already on.
                last = (sec, pos)
                continue
            points.append((dist, sec(x)))
            last = (sec, pos)
    return points


def space(seg_a, seg_b, var="v", ax=None, xlabel="distance (µm)", **kwargs):
    """Plots `var` now at every node on the path from seg_a to seg_b; returns the axes."""
    pts = path(seg_a, seg_b)
    ax = _axes(ax)
    ax.plot([d for d, _ in pts], [getattr(s, var) for _, s in pts], **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(var)
    return ax
