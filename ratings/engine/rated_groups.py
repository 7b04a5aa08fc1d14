"""Which models have a Bradley-Terry rating at all, and which ratings can be compared with each other.

The ties-as-half-wins likelihood has a finite maximum for a set of models exactly when their battles link
them both ways: draw an arrow from i to j when i scored against j (a win, or a tie of either kind, which
counts half for both sides); the maximum exists for a set of models when every one can reach every other
along arrows, i.e. within a strongly connected component of that graph (Zermelo 1929, Ford 1957). A model
with only wins, or only losses, is a component of its own, and so is a group that only ever beat (or only
ever lost to) the rest: its rating relative to the others is infinite. Models that never met, directly or
through others, have no relative rating at all.

So each connected part of the battle graph keeps the strongly connected component holding the most battles
among its own members, if it has two models or more: that is a rated group. Every other model of that part
is not rated yet. The likelihood's supremum gives a rated group the ratings its own battles alone give
(battles with models outside it tend to probability one as the offsets go to infinity), so those battles
are left out of its fit rather than left to the tiny ridge, which would turn them into ratings thousands
of points away. Groups are numbered by battles, most first; ratings compare only within a group.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components

NOT_RATED = -1


@dataclass(frozen=True)
class RatedGroups:
    """Each model's rated group (0 = the group with the most battles), or NOT_RATED."""

    label: np.ndarray  # (M,) int
    battles: np.ndarray  # (G,) battles within each group, most first
    played: np.ndarray | None = None  # (M,) battles each model played inside its group (0: unrated)

    @property
    def rated(self) -> np.ndarray:
        """Boolean mask of the models with a rating."""
        return self.label >= 0

    @property
    def n_groups(self) -> int:
        return int(self.battles.size)

    @property
    def is_single(self) -> bool:
        """Whether every model belongs to one group (the usual board: nothing to leave out or keep apart)."""
        return self.n_groups == 1 and bool(self.rated.all())

    def within(self, model_a: np.ndarray, model_b: np.ndarray) -> np.ndarray:
        """Per pair: whether both models are in the same rated group (only such battles enter a fit)."""
        return (self.label[model_a] >= 0) & (self.label[model_a] == self.label[model_b])


def _scored_graph(n_models: int, model_a: np.ndarray, model_b: np.ndarray, score_a: np.ndarray, totals: np.ndarray):
    """Sparse (M, M) graph with an arrow i -> j where i scored against j (won or tied at least once)."""
    forward = score_a > 0
    backward = totals - score_a > 0
    rows = np.concatenate([model_a[forward], model_b[backward]])
    cols = np.concatenate([model_b[forward], model_a[backward]])
    # Built from (row, col) pairs, which sums repeated arrows into one entry. Keep it so: scipy 1.17.1's strong
    # connected_components never returns on a CSR graph that stores an arrow twice (a three-node graph will
    # do), so a faster hand-built CSR must not carry duplicates.
    return sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_models, n_models))


def find_rated_groups(
    n_models: int, model_a: np.ndarray, model_b: np.ndarray, score_a: np.ndarray, totals: np.ndarray
) -> RatedGroups:
    """The rated groups of side-merged pair arrays (score_a: wins of side a plus half the ties)."""
    model_a = np.asarray(model_a, dtype=np.int64)
    model_b = np.asarray(model_b, dtype=np.int64)
    played = totals > 0
    model_a, model_b, score_a, totals = model_a[played], model_b[played], score_a[played], totals[played]
    label = np.full(n_models, NOT_RATED, dtype=np.int64)
    if model_a.size == 0:
        return RatedGroups(label, np.zeros(0, dtype=np.int64))
    graph = _scored_graph(n_models, model_a, model_b, score_a, totals)
    _, part = connected_components(graph, directed=True, connection="weak")
    _, strong = connected_components(graph, directed=True, connection="strong")
    inside = strong[model_a] == strong[model_b]
    strong_battles = np.bincount(strong[model_a[inside]], totals[inside], n_models)
    # Per connected part, the strong component with the most battles among its members (ties: lowest label).
    candidates = np.flatnonzero(strong_battles > 0)
    part_of_component = np.zeros(n_models, dtype=np.int64)
    part_of_component[strong] = part  # a strong component lies inside one connected part
    part_of = part_of_component[candidates]
    order = np.lexsort((candidates, -strong_battles[candidates], part_of))
    first_of_part = np.concatenate([[True], part_of[order][1:] != part_of[order][:-1]]) if order.size else order
    kept = candidates[order][first_of_part]
    kept = kept[np.lexsort((kept, -strong_battles[kept]))]  # most battles first
    for group, component in enumerate(kept.tolist()):
        label[strong == component] = group
    inside = (label[model_a] >= 0) & (label[model_a] == label[model_b])
    played = np.bincount(model_a[inside], totals[inside], n_models) + np.bincount(
        model_b[inside], totals[inside], n_models
    )
    return RatedGroups(label, strong_battles[kept].astype(np.int64), played.astype(np.float64))


@dataclass(frozen=True)
class SureLinks:
    """Arrows that alone keep every rated group strongly connected (`sure_links`), and for each model the
    arrows on its paths from its group's root and back to it along them."""

    pairs: np.ndarray  # (L,) the pair of each arrow
    forward: np.ndarray  # (L,) True: side a scored against side b
    paths: np.ndarray  # (M, L) bool: the arrows on the model's two paths (none for a root or an unrated model)
    roots: np.ndarray  # (M,) the root of the model's group (the model itself if unrated)

    @cached_property
    def path_matrix(self) -> np.ndarray:
        """(L, M) float32 `paths.T`, for a matrix product per bootstrap chunk."""
        return np.ascontiguousarray(self.paths.T, dtype=np.float32)


def sure_links(
    groups: RatedGroups, model_a: np.ndarray, model_b: np.ndarray, score_a: np.ndarray, totals: np.ndarray
) -> SureLinks:
    """Arrows that alone keep every rated group strongly connected, picked to survive resampling: a pair
    index and direction (True: side a scored against side b) per arrow, and each model's paths along them.

    Per group, an out-tree and an in-tree from one member, each model reached along the path whose thinnest
    arrow is the thickest (a widest path). A resample loses an arrow of w points with probability about
    exp(-w); while it keeps all of these, its groups are the data's, which spares the component search in
    almost every round of a well-sampled board, and a round that loses one is searched only around the
    models whose paths it was on: widest paths keep a thin model's arrows off the others' paths.
    """
    n = groups.label.size
    within = groups.within(model_a, model_b)
    pair = np.concatenate([np.flatnonzero(within)] * 2)
    forward = np.repeat([True, False], within.sum())
    source = np.where(forward, model_a[pair], model_b[pair])
    target = np.where(forward, model_b[pair], model_a[pair])
    points = np.where(forward, score_a[pair], totals[pair] - score_a[pair])
    chosen_pairs, chosen_forward, tree_paths = [], [], []
    roots = np.arange(n)
    for group in range(groups.n_groups):
        members = groups.label == group
        arrows = np.flatnonzero(members[source] & (points > 0))
        root = int(np.flatnonzero(members)[0])
        roots[members] = root
        # Reaching every member from the root, and the root from every member.
        for tails, heads in ((source, target), (target, source)):
            order, parent, arrow = _widest_tree(n, tails, heads, points, arrows, root)
            children = np.flatnonzero(members & (parent >= 0))
            chosen_pairs.append(pair[arrow[children]])
            chosen_forward.append(forward[arrow[children]])
            # A model's path is its parent's and the arrow between them (the order visits parents first).
            arrow_of = np.full(n, -1)
            arrow_of[children] = np.arange(children.size)
            paths = np.zeros((n, children.size), dtype=bool)
            for node in order:
                if node != root:
                    paths[node] = paths[parent[node]]
                    paths[node, arrow_of[node]] = True
            tree_paths.append(paths)
    if not chosen_pairs:
        return SureLinks(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros((n, 0), dtype=bool), roots)
    return SureLinks(np.concatenate(chosen_pairs), np.concatenate(chosen_forward), np.hstack(tree_paths), roots)


def _widest_tree(
    n: int, tails: np.ndarray, heads: np.ndarray, points: np.ndarray, arrows: np.ndarray, root: int
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The nodes reached from `root` along `arrows` (tails -> heads) in the order they are settled, and each
    one's parent and arrow on a widest path (Dijkstra, keeping the largest smallest arrow); parent -1 if not
    reached or the root."""
    by_tail = arrows[np.argsort(tails[arrows], kind="stable")]
    starts = np.searchsorted(tails[by_tail], np.arange(n + 1))
    width = np.full(n, -np.inf)
    width[root] = np.inf
    parent = np.full(n, -1)
    arrow = np.full(n, -1)
    settled = np.zeros(n, dtype=bool)
    heap = [(-np.inf, root)]
    order = []
    while heap:
        _, node = heapq.heappop(heap)
        if settled[node]:
            continue
        settled[node] = True
        order.append(node)
        out = by_tail[starts[node] : starts[node + 1]]
        reach = np.minimum(width[node], points[out])
        better = ~settled[heads[out]] & (reach > width[heads[out]])
        for k, value in zip(out[better].tolist(), reach[better].tolist(), strict=True):
            head = int(heads[k])
            if value > width[head]:  # an earlier arrow of this loop may have done better
                width[head], parent[head], arrow[head] = value, node, k
                heapq.heappush(heap, (-value, head))
    return order, parent, arrow


def round_groups(
    groups: RatedGroups,
    model_a: np.ndarray,
    model_b: np.ndarray,
    score_a: np.ndarray,
    totals: np.ndarray,
    links: SureLinks | None = None,
) -> np.ndarray:
    """(R, M) labels of bootstrap rounds (score_a, totals of shape (R, P)): a model keeps its group's label
    in a round if it is in that round's rated part of its group, else NOT_RATED.

    A resample can leave a thin model without battles or with a one-sided record; it then has no rating in
    that round and must not move the others' centring. A round that keeps every arrow of `links`
    (`sure_links` of the data) has the data's groups; in the others only the models whose paths lost an
    arrow are looked at (`_search_around`). Without `links`, every round is searched whole: one
    block-diagonal graph, two calls to scipy's components whatever the number of rounds.
    """
    rounds, n = score_a.shape[0], groups.label.size
    within = groups.within(model_a, model_b)
    labels = np.tile(groups.label, (rounds, 1))
    if rounds == 0 or not within.any():
        return labels
    if links is not None:
        lost = ~np.where(
            links.forward, score_a[:, links.pairs] > 0, totals[:, links.pairs] - score_a[:, links.pairs] > 0
        )
        changed = lost.any(axis=1)
        if changed.any():
            # Counts of lost arrows on each model's paths, as a float product (BLAS; exact: a few hundred at most).
            uncertain = (lost[changed].astype(np.float32) @ links.path_matrix) > 0
            labels[changed] = _search_around(
                groups, links, model_a, model_b, score_a[changed], totals[changed], uncertain
            )
        return labels
    a, b = model_a[within], model_b[within]
    score, battles = score_a[:, within], totals[:, within]
    offsets = (np.arange(rounds) * n)[:, None]
    node_a, node_b = (offsets + a).ravel(), (offsets + b).ravel()
    graph = _scored_graph(rounds * n, node_a, node_b, score.ravel(), battles.ravel())
    _, strong = connected_components(graph, directed=True, connection="strong")
    inside = (strong[node_a] == strong[node_b]) & (battles.ravel() > 0)
    strong_battles = np.bincount(strong[node_a[inside]], battles.ravel()[inside], rounds * n)
    # In each round, each group keeps its strong component with the most battles (ties: lowest label).
    size = rounds * n + 1
    key = np.where(strong_battles[strong] > 0, strong_battles[strong] * size + (size - 1 - strong), -1.0)
    key = key.reshape(rounds, n)
    best = np.full((rounds, groups.n_groups), -1.0)
    for group in range(groups.n_groups):
        members = groups.label == group
        best[:, group] = key[:, members].max(axis=1)
    kept = (groups.label >= 0)[None, :] & (key >= 0)
    kept &= key == np.take_along_axis(best, np.maximum(labels, 0), axis=1)
    return np.where(kept, labels, NOT_RATED)


def _search_around(
    groups: RatedGroups,
    links: SureLinks,
    model_a: np.ndarray,
    model_b: np.ndarray,
    score_a: np.ndarray,
    totals: np.ndarray,
    uncertain: np.ndarray,
) -> np.ndarray:
    """round_groups for rounds that lost some sure arrows, looking only around the models whose paths lost
    one (`uncertain`, (R, M)): the others still reach their root and are reached from it along kept arrows, so
    they are in their root's component, and stand in the search as one node, the root. Components among the
    uncertain models are the round's own (a cycle through the certain part would put them in the root's).
    The root's component is the group's rated part when it holds more battles than any other, which the
    battles on its kept sure arrows alone settle in almost every round; a round where they do not is searched
    whole. On category boards thin models leave some sure arrow in nearly every round, and the whole search
    over every pair was 2.5 s of a snapshot's 3.9 s."""
    rounds, n = uncertain.shape
    # Pairs with an uncertain side: the only ones searched (those of a model uncertain in any round, then
    # in each round; a lone thin model has a few dozen of a board's thousands).
    anywhere = uncertain.any(axis=0)
    pairs = np.flatnonzero(groups.within(model_a, model_b) & (anywhere[model_a] | anywhere[model_b]))
    a, b = model_a[pairs], model_b[pairs]
    touched = uncertain[:, a] | uncertain[:, b]
    node = np.where(uncertain, np.arange(n), links.roots)  # a certain model is its root's node
    offsets = np.arange(rounds) * n
    rows, cols = np.nonzero(touched)
    node_a, node_b = offsets[rows] + node[rows, a[cols]], offsets[rows] + node[rows, b[cols]]
    battles = totals[rows, pairs[cols]]
    graph = _scored_graph(rounds * n, node_a, node_b, score_a[rows, pairs[cols]], battles)
    _, strong = connected_components(graph, directed=True, connection="strong")
    component = strong[offsets[:, None] + node]  # (R, M): each model's component in its round
    # Battles inside the components other than the roots' (all among uncertain models, so touched pairs).
    inside = (strong[node_a] == strong[node_b]) & (battles > 0)
    other_battles = np.bincount(strong[node_a[inside]], battles[inside], rounds * n)
    # At least what the root's component holds: the battles of the sure pairs (each once) between certain models.
    sure_pairs = np.unique(links.pairs)
    sure_a, sure_b = model_a[sure_pairs], model_b[sure_pairs]
    between_certain = ~uncertain[:, sure_a] & ~uncertain[:, sure_b]
    sure_battles = np.where(between_certain, totals[:, sure_pairs], 0.0)
    labels = np.tile(groups.label, (rounds, 1))
    settled = np.ones(rounds, dtype=bool)
    for group in range(groups.n_groups):
        members = groups.label == group
        root = int(links.roots[np.flatnonzero(members)[0]])
        root_component = strong[offsets + root]
        floor = sure_battles[:, groups.label[sure_a] == group].sum(axis=1)
        others = np.where(members & (component != root_component[:, None]), other_battles[component], 0.0)
        settled &= others.max(axis=1, initial=0.0) < floor
        labels[:, members] = np.where(component[:, members] == root_component[:, None], group, NOT_RATED)
    if not settled.all():
        labels[~settled] = round_groups(groups, model_a, model_b, score_a[~settled], totals[~settled])
    return labels


def one_sided_direction(
    labels: np.ndarray, model_a: np.ndarray, model_b: np.ndarray, score_a: np.ndarray, totals: np.ndarray
) -> np.ndarray:
    """(R, M): +1 for a model outside every rated group of its round that only scored against that round's
    rated models (its rating there is +infinity), -1 if it only lost to them, 0 if it did not meet them."""
    rounds, n = labels.shape
    direction = np.zeros((rounds, n))
    if rounds == 0 or model_a.size == 0:
        return direction
    la, lb = labels[:, model_a], labels[:, model_b]
    losses = totals - score_a
    scored = np.zeros((rounds, n))
    lost = np.zeros((rounds, n))
    # Battles of an unrated model a against rated model b, and the other way round.
    for outside, inside, own_score, own_losses, side in (
        (la < 0, lb >= 0, score_a, losses, model_a),
        (lb < 0, la >= 0, losses, score_a, model_b),
    ):
        mask = outside & inside
        rows, cols = np.nonzero(mask)
        np.add.at(scored, (rows, side[cols]), own_score[rows, cols])
        np.add.at(lost, (rows, side[cols]), own_losses[rows, cols])
    direction = _one_sided(scored, lost)
    direction[labels >= 0] = 0.0
    return direction


def _one_sided(scored: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """+1 where a model only scored, -1 where it only lost, 0 where it did both or neither."""
    return np.where((scored > 0) & (lost == 0), 1.0, np.where((lost > 0) & (scored == 0), -1.0, 0.0))


def collapsed_group_direction(
    labels: np.ndarray,
    groups: RatedGroups,
    model_a: np.ndarray,
    model_b: np.ndarray,
    score_a: np.ndarray,
    totals: np.ndarray,
    skip_group: int | None = None,
) -> np.ndarray:
    """(R, M): in a round where no model of a rated group has a rating (the resample left it without a
    strongly connected core: 8-0 where the data had 7-1), +1 for a model of that group that only scored
    against the others of it there, -1 for one that only lost to them, 0 otherwise (and for `skip_group`,
    the anchor's: `anchored_direction`)."""
    rounds, n = labels.shape
    direction = np.zeros((rounds, n))
    for group in range(groups.n_groups):
        members = groups.label == group
        collapsed = np.flatnonzero(~(labels[:, members] >= 0).any(axis=1))
        if group == skip_group or collapsed.size == 0:
            continue
        pairs = np.flatnonzero(members[model_a] & members[model_b])
        own_score = score_a[np.ix_(collapsed, pairs)]
        own_losses = totals[np.ix_(collapsed, pairs)] - own_score
        scored = np.zeros((collapsed.size, n))
        lost = np.zeros((collapsed.size, n))
        np.add.at(scored, (slice(None), model_a[pairs]), own_score)
        np.add.at(scored, (slice(None), model_b[pairs]), own_losses)
        np.add.at(lost, (slice(None), model_a[pairs]), own_losses)
        np.add.at(lost, (slice(None), model_b[pairs]), own_score)
        direction[np.ix_(collapsed, np.flatnonzero(members))] = _one_sided(scored, lost)[:, members]
    return direction


def anchored_direction(
    labels: np.ndarray,
    groups: RatedGroups,
    model_a: np.ndarray,
    model_b: np.ndarray,
    score_a: np.ndarray,
    totals: np.ndarray,
    anchor_index: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The rounds (R,) in which the anchor has no rating (a resample left it one-sided, or its whole group
    without a core), and in them each model of its group's side of the anchor (R, M): -1 for one the anchor
    reaches along that round's "scored against" arrows and that does not reach it back (infinitely below the
    anchor), +1 for one that reaches the anchor and is not reached, 0 for the anchor and the others (no
    rating relative to it there)."""
    rounds, n = labels.shape
    direction = np.zeros((rounds, n))
    anchor_out = labels[:, anchor_index] < 0
    group = groups.label[anchor_index]
    if group < 0:
        return anchor_out, direction
    members = groups.label == group
    pairs = np.flatnonzero(members[model_a] & members[model_b])
    for round_index in np.flatnonzero(anchor_out).tolist():
        graph = _scored_graph(
            n, model_a[pairs], model_b[pairs], score_a[round_index, pairs], totals[round_index, pairs]
        )
        below = np.zeros(n, dtype=bool)
        above = np.zeros(n, dtype=bool)
        below[breadth_first_order(graph, anchor_index, directed=True, return_predecessors=False)] = True
        above[breadth_first_order(graph.T.tocsr(), anchor_index, directed=True, return_predecessors=False)] = True
        direction[round_index] = np.where(below & ~above, -1.0, np.where(above & ~below, 1.0, 0.0))
    return anchor_out, direction


def unrated_notes(
    groups: RatedGroups, model_a: np.ndarray, model_b: np.ndarray, score_a: np.ndarray, totals: np.ndarray
) -> list[str]:
    """Per model: "" if rated or without battles, else a plain sentence saying why it has no rating yet."""
    n = groups.label.size
    if groups.is_single:
        return [""] * n
    played = totals > 0
    model_a, model_b, score_a, totals = model_a[played], model_b[played], score_a[played], totals[played]
    battles = np.bincount(model_a, totals, n) + np.bincount(model_b, totals, n)
    scored = np.bincount(model_a, score_a, n) + np.bincount(model_b, totals - score_a, n)
    graph = _scored_graph(n, model_a, model_b, score_a, totals)
    # Reachability from and to the rated models along "scored against" arrows: a model the rated models
    # reach (beat, directly or through others) but cannot be reached from sits below them, and so on.
    below = np.zeros(n, dtype=bool)
    above = np.zeros(n, dtype=bool)
    for group in range(groups.n_groups):
        start = int(np.flatnonzero(groups.label == group)[0])
        below[breadth_first_order(graph, start, directed=True, return_predecessors=False)] = True
        above[breadth_first_order(graph.T.tocsr(), start, directed=True, return_predecessors=False)] = True
    notes = []
    for i in range(n):
        count = int(battles[i])
        plural = "battle" if count == 1 else "battles"
        if groups.label[i] >= 0 or count == 0:
            notes.append("")
        elif scored[i] == count:
            notes.append(f"Not rated yet: only wins so far ({count} {plural}), so its rating has no finite estimate.")
        elif scored[i] == 0:
            notes.append(f"Not rated yet: only losses so far ({count} {plural}), so its rating has no finite estimate.")
        elif above[i] and not below[i]:
            notes.append(
                "Not rated yet: it has only won against the rated models, directly or through the models it met, "
                "so its rating has no finite estimate."
            )
        elif below[i] and not above[i]:
            notes.append(
                "Not rated yet: it has only lost to the rated models, directly or through the models it met, "
                "so its rating has no finite estimate."
            )
        else:
            notes.append(
                "Not rated yet: its wins and losses do not link it both ways to a group of rated models, "
                "so its rating has no finite estimate."
            )
    return notes


def board_note(groups: RatedGroups, votes: np.ndarray, *, anchor_dropped: str | None = None) -> str:
    """A plain paragraph for a board whose models are not all one rated group ("" when they are)."""
    unrated = int(np.sum((votes > 0) & ~groups.rated))
    sentences = []
    if groups.n_groups > 1:
        sentences.append(
            f"These models form {groups.n_groups} groups that have never met, directly or through other models: "
            "ratings and ranks compare only within a group (group 1 has the most battles)."
        )
    if unrated:
        many = unrated != 1
        sentences.append(
            f"{unrated} model{'s are' if many else ' is'} not rated yet: {'their' if many else 'its'} wins and "
            f"losses do not yet link {'them' if many else 'it'} both ways to the others (for example only wins so "
            "far), so no finite rating exists; the battles are counted and kept."
        )
    if anchor_dropped:
        sentences.append(
            f"The anchor model {anchor_dropped} is not rated on this board, so ratings are centred on the mean instead."
        )
    return " ".join(sentences)
