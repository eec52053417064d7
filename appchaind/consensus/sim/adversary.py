"""The strong adversary: one mind behind every ``ADAPTIVE`` byzantine validator of a run.

(long because: the three campaigns — classic, stale, starve — share one per-height plan,
its held messages and the moves that release them; split into a plan module and one per
campaign when a fourth strategy comes.)

It signs anything a validator can sign, and chooses per height and round what each honest
validator gets, and when:

* proposals of any value it knows at the height (its own block, a fresh one, a re-proposal
  of an old value) with any ``pol_round``: -1, a round with a real polka for the value
  (whose prevotes it relays), the honest validators' highest locked round, or any earlier
  round, with or without a polka behind it; it backs a ``pol_round`` with prevotes of
  every byzantine validator for the value in that round;
* prevotes and precommits for any value, in the current round or an earlier one;
* equivocation targeted to split the honest validators: the value to a chosen group (the
  smallest group that makes a polka with the byzantine power, those locked on something,
  a random half, one, all) and another value, nil, nothing, or the value too late, to the
  rest; its prevotes to the lockers it picks, its precommits to the deciders it picks;
* withheld and late messages: sent just after the receiver's timeout for the step, a
  random time later, or held until the byzantine validators precommit a value in a later
  round of the height.

Per height it runs one campaign (drawn at the height's first round; one that found no round
to move in carries on to the next height):

``classic``  each round one of three stages, chosen from what the honest validators hold:
             ``split`` (nobody locked: lock a polka group on one value and let one weak
             member decide it, its precommit held back), ``break`` (some locked: push
             another value with a pol_round at or above their locks, to everyone, and release
             the held precommits when it gets its polka), ``random`` (any plan);
``stale``    ``small`` (a, a byzantine proposer): v' to a polka group, the byzantine
             prevotes to a small group K only (the others alone make no polka, with the
             byzantine power they do), so only K locks v' and the others can get nothing fresh
             decided; ``lock`` (b > a): v to a polka group of the others, K getting another
             proposal (so K's line 36 cannot lock v however the polka is gossiped), the
             byzantine precommits for v held for K; ``stale`` (c > b, a byzantine proposer or
             a member of K re-proposing its validValue): v' with pol_round a and its withheld
             polka, or with pol_round b (2f+1 prevotes there, none for v'), to all but K;
             K's held decision of v is released when v' has its polka (at once when a member
             of K proposes: K plays that round). A rule that lets an older polka
             (pol-ignores-lock), a nil polka (unlock-on-nil-polka), a polka it never saw
             (pol-without-polka) or one for another value (pol-any-value) release a lock gets
             v' decided next to K's v;
``starve``   ``small`` (a) as above, then ``lock`` (b > a): v fresh to everyone, the byzantine
             prevotes to the others only, who lock v; then nil votes and no proposals. Only
             re-proposals that carry their polka's round (line 16) join the two lock groups:
             without it the height never ends.

Between its moves its validators vote as their machines do (before the first) or nil (after).
It reads the honest validators' locks and valid values (the model's adversary controls the
network and sees what they prevoted and precommitted); it never signs for an honest validator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appchaind.chain import crypto
from appchaind.chain.types import PRECOMMIT, PREVOTE, Block, Commit, Proposal, Vote
from appchaind.consensus.config import Step
from appchaind.consensus.events import BlockReceived, ProposalReceived, VoteReceived
from appchaind.consensus.machine import NIL
from appchaind.consensus.sim.faults import ByzantineKind
from appchaind.consensus.sim.keys import RawSigner
from appchaind.consensus.sim.nodes import SimNode

if TYPE_CHECKING:
    from appchaind.consensus.sim.world import Simulation

__all__ = ["Adversary", "AdversarySigner", "Campaign", "RoundPlan"]

#: What the honest validators outside a round's group get: the same as the group, nil,
#: another value (equivocation), nothing (withheld), or the same just after their timeout.
REST = ("same", "nil", "alt", "none", "late")
#: When the deciders get the byzantine precommits: at once, a random time later (ms), or
#: held until the byzantine validators precommit a value in a later round of the height.
NOW, HOLD = 0, -1
#: What it aims at, per height: ``classic`` (split / break / random), ``stale`` (an old
#: polka past a newer lock) or ``starve`` (two lock groups that only POL re-proposals join).
CAMPAIGNS = ("classic", "stale", "stale", "starve")


class AdversarySigner(RawSigner):
    """An ``ADAPTIVE`` validator's signer: signs anything, but gives its own machine a nil
    precommit when it asks for one for a block. So that machine never decides on the strength
    of the precommits the adversary hands to chosen validators only: it stays at the height
    (to play its later rounds) until the honest validators' precommits or a commit move it on.
    """

    def sign_vote(self, vote: Vote) -> Vote:
        if vote.kind == PRECOMMIT and vote.block_hash:
            vote = dataclasses.replace(vote, block_hash=NIL, extension=b"")
        return super().sign_vote(vote)


@dataclass
class RoundPlan:
    """What the byzantine validators do at one (height, round). Indices are node indices."""

    stage: str
    #: the value pushed (proposed, prevoted, precommitted); None until the first message
    value: bytes | None
    #: the honest validators that get the proposal
    group: frozenset[int]
    #: the honest validators that get the byzantine prevotes for the value
    lockers: frozenset[int]
    #: the honest validators that get the byzantine precommits for the value
    deciders: frozenset[int]
    rest: str
    #: extra delay of the messages to the group, in virtual ms
    delay_ms: int
    #: NOW, HOLD, or a delay in virtual ms
    decide_at: int
    #: the other value of an equivocation (a fresh block's hash, or nil)
    alt: bytes = NIL
    #: what the rest get of its votes, if not what they get of its proposal (``rest``)
    votes_rest: str = ""


@dataclass
class Campaign:
    """The adversary's aim at one height, chosen at its first round (see the module docstring)."""

    kind: str
    #: the round and value of the small group's lock
    round: int = -1
    value: bytes = NIL
    #: the round of the others' lock
    lock_round: int = -1


@dataclass
class Adversary:
    """The adversary of one run: its plans, and what the byzantine validators have seen."""

    sim: Simulation
    plans: dict[tuple[int, int], RoundPlan] = field(default_factory=dict)
    #: every block the byzantine validators saw or made, by hash
    blocks: dict[bytes, Block] = field(default_factory=dict)
    #: (height, round, block hash) -> validator index -> its prevote (to relay a polka)
    prevotes: dict[tuple[int, int, bytes], dict[int, Vote]] = field(default_factory=dict)
    #: (height, round) -> the first proposal seen
    proposals: dict[tuple[int, int], Proposal] = field(default_factory=dict)
    #: height -> precommits held back: (from, to, message)
    held: dict[int, list[tuple[int, int, Any]]] = field(default_factory=dict)
    #: height -> the validators it released held precommits to
    victims: dict[int, set[int]] = field(default_factory=dict)
    campaigns: dict[int, Campaign] = field(default_factory=dict)

    # ------------------------------------------------------------------ what it sees

    def observe(self, payload: Any) -> None:
        """Notes a message delivered to one of its validators."""
        if isinstance(payload, VoteReceived):
            vote = payload.vote
            if vote.kind == PREVOTE:
                key = (vote.height, vote.round, vote.block_hash)
                self.prevotes.setdefault(key, {})[vote.validator_index] = vote
                plan = self.plans.get((vote.height, vote.round))
                if (
                    plan is not None
                    and plan.stage in ("break", "stale")
                    and vote.block_hash
                    and plan.value == vote.block_hash
                    and vote.height in self.held
                    and self._has_polka(vote.height, vote.round, vote.block_hash)
                ):
                    # The honest validators are about to decide the value: now the held
                    # precommits make their receivers decide the old one.
                    self._release(vote.height)
        elif isinstance(payload, ProposalReceived):
            p = payload.proposal
            self.proposals.setdefault((p.height, p.round), p)
        elif isinstance(payload, BlockReceived):
            self.blocks.setdefault(payload.block.block_id(), payload.block)

    def decided(self, node: SimNode, block: Block, commit: Commit) -> None:
        """An honest validator decided: its validators still at that height follow at once
        (their blinded precommits keep them from deciding by themselves), unless ``node``
        decided on precommits the adversary held back for it."""
        height = block.header.height
        if node.index in self.victims.get(height, ()):
            return
        for byz in self.sim.nodes:
            if byz.byzantine is ByzantineKind.ADAPTIVE and byz.machine is not None:
                if byz.machine.height == height:
                    self.sim.send_commit(node.index, byz.index, block, commit)

    # ------------------------------------------------------------------ what it signs

    def propose(self, node: SimNode, proposal: Proposal, block: Block) -> None:
        """``node`` is the proposer of (height, round): any value, any pol_round, to chosen groups."""
        sim, rng = self.sim, self.sim.rng
        sim.faults += 1
        h, r = proposal.height, proposal.round
        plan = self._plan(node, h, r, proposing=True)
        self.blocks[block.block_id()] = block
        if plan.stage == "starve":
            return  # its proposers stay silent while the honest validators' locks hold
        chosen, pol_round = self._proposal_value(node, plan, proposal, block)
        value = chosen.block_id()
        plan.value = value
        if plan.stage == "small":
            self.campaigns[h].round, self.campaigns[h].value = r, value
        elif plan.stage == "lock":
            self.campaigns[h].lock_round = r
        sim.checks.proposed.add(value)
        signer = RawSigner(node.key)
        first = signer.sign_proposal(
            dataclasses.replace(proposal, pol_round=pol_round, block_hash=value)
        )
        messages: list[Any] = [ProposalReceived(first), BlockReceived(chosen)]
        if plan.stage == "stale":
            if pol_round == self.campaigns[h].round:
                messages += self._polka(h, pol_round, value, proposal.timestamp_ms)
        elif pol_round >= 0 and (plan.stage == "break" or rng.randrange(2)):
            messages += self._polka(h, pol_round, value, proposal.timestamp_ms)
        other: list[Any] = []
        if plan.rest == "alt":
            alt_block = self._fresh(node, block)
            plan.alt = alt_block.block_id()
            sim.checks.proposed.add(plan.alt)
            alt_pol = rng.choice((-1, pol_round))
            alt = signer.sign_proposal(
                dataclasses.replace(proposal, pol_round=alt_pol, block_hash=plan.alt)
            )
            other = [ProposalReceived(alt), BlockReceived(alt_block)]
        late = sim.config.timeout_ms(Step.PROPOSE, r) + rng.randint(1, 40)
        self._deliver(node, plan, plan.rest, plan.group, tuple(messages), tuple(other), late)

    def vote(self, node: SimNode, vote: Vote) -> None:
        """A vote ``node``'s machine signed: replaced by the plan's votes, to chosen groups."""
        sim, rng = self.sim, self.sim.rng
        sim.faults += 1
        h, r = vote.height, vote.round
        plan = self._plan(node, h, r, proposing=False)
        if plan.value is None:
            seen = self.proposals.get((h, r))
            if plan.stage == "pass":
                plan.value = vote.block_hash  # what its machine votes
            elif plan.stage == "starve":
                plan.value = NIL
            elif plan.stage == "break":
                # the round's proposal, unless it is a locked value; or nil (a nil polka
                # with the locked validators' nil prevotes)
                locks = {self._locked_value(i, h) for i in range(len(sim.nodes))}
                seen_value = NIL if seen is None else seen.block_hash
                keep = seen_value not in locks and rng.randrange(2)
                plan.value = seen_value if keep else NIL
            elif seen is not None and rng.randrange(3):
                plan.value = seen.block_hash
            else:
                plan.value = vote.block_hash
        value = plan.value
        rest = plan.votes_rest or plan.rest
        if vote.kind == PREVOTE:
            mine: tuple[Any, ...] = (VoteReceived(self._vote(node, vote, PREVOTE, r, value)),)
            if plan.stage in ("random", "split", "break") and rng.randrange(4) == 0 and r > 0:
                # a prevote for the value in an earlier round too (a polka completed late)
                mine += (VoteReceived(self._vote(node, vote, PREVOTE, rng.randrange(r), value)),)
            alt = plan.alt if rest == "alt" else NIL
            other = (VoteReceived(self._vote(node, vote, PREVOTE, r, alt)),)
            if plan.stage == "stale":
                # the old polka (an honest proposer's re-proposal names it too); an honest
                # proposer's round K plays too, so K's held decision of v goes now, ahead of
                # the precommits for v' (else when v' has its polka: K deciding early would
                # hand v to the others through catch-up before they decide v')
                campaign = self.campaigns[h]
                mine += tuple(self._polka(h, campaign.round, campaign.value, vote.timestamp_ms))
                if not self._byzantine_proposer(node, r):
                    self._release(h)
            late = sim.config.timeout_ms(Step.PREVOTE, r) + rng.randint(1, 40)
            self._deliver(node, plan, rest, plan.lockers, mine, other, late)
            return
        if plan.stage in ("break", "stale") and value and self._has_polka(h, r, value):
            self._release(h)  # the honest validators are about to decide the value
        commit = VoteReceived(self._vote(node, vote, PRECOMMIT, r, value))
        nil = VoteReceived(self._vote(node, vote, PRECOMMIT, r, NIL))
        for dst in range(len(sim.nodes)):
            if dst == node.index:
                continue
            if not sim.nodes[dst].honest:
                # (a campaign's validators must not decide by themselves: they play on)
                sim.send(node.index, dst, nil if plan.stage in ("small", "lock") else commit)
            elif dst in plan.deciders:
                if plan.decide_at == HOLD:
                    held = self.held.setdefault(h, [])
                    if value in self.blocks:  # (the deciders may have got another proposal)
                        held.append((node.index, dst, BlockReceived(self.blocks[value])))
                    held.append((node.index, dst, commit))
                else:
                    self._send(node, dst, (commit,), plan.decide_at)
            elif rest != "none":
                sim.send(node.index, dst, nil if value and plan.stage != "random" else commit)

    # ------------------------------------------------------------------ plans

    def _plan(self, node: SimNode, height: int, round: int, *, proposing: bool) -> RoundPlan:
        plan = self.plans.get((height, round))
        if plan is None:
            plan = self._new_plan(node, height, round, proposing)
            self.plans[(height, round)] = plan
            for old in [k for k in self.plans if k[0] < height - 1]:
                del self.plans[old]
            for old_height in [k for k in self.held if k < height - 1]:
                del self.held[old_height]
            for old_height in [k for k in self.victims if k < height - 1]:
                del self.victims[old_height]
            for old_height in [k for k in self.campaigns if k < height - 1]:
                del self.campaigns[old_height]
        return plan

    def _new_plan(self, node: SimNode, height: int, round: int, proposing: bool) -> RoundPlan:
        """A split needs its own proposal (an honest proposer's reaches everyone, who all
        lock, unless it comes late), or a byzantine proposer next (to break the locks at once)."""
        sim, rng = self.sim, self.sim.rng
        power = self._powers(node)
        honest = [i for i, n in enumerate(sim.nodes) if n.honest]
        locked = [i for i in honest if self._locked_round(i, height) >= 0]
        campaign = self.campaigns.get(height)
        if campaign is None:
            # a campaign that found no round to move in (an honest proposer's value was
            # decided first) carries on at the next height
            last = self.campaigns.get(height - 1)
            idle = last is not None and last.kind != "classic" and last.round < 0
            kind = last.kind if last is not None and idle else rng.choice(CAMPAIGNS)
            campaign = self.campaigns[height] = Campaign(kind)
        if campaign.kind == "stale":
            return self._stale_plan(campaign, node, height, round, power, honest, locked)
        if campaign.kind == "starve":
            return self._starve_plan(campaign, node, height, round, power, honest, locked)
        assert node.machine is not None
        next_proposer = sim.addresses[node.machine.state.validators.proposer_for_round(round + 1)]
        if locked:
            stage = rng.choice(("break", "break", "random"))
        elif proposing or not sim.nodes[next_proposer].honest:
            stage = rng.choice(("split", "split", "random"))
        else:
            stage = "random"
        if stage == "break":
            # Everyone gets the value; the byzantine precommits go to all but the nodes it
            # holds a precommit of this height for (those decide the held value instead).
            holding = {dst for _, dst, _ in self.held.get(height, ())}
            everyone = frozenset(honest)
            return RoundPlan(stage, None, everyone, everyone, everyone - holding, "same", 0, NOW)
        if stage == "split":
            group = self._polka_group(node, power, honest, round)
        else:
            group = self._random_group(honest, locked, power, node, round)
        members = sorted(group)
        victim = min(members, key=lambda i: (power[i], i)) if members else -1
        single = frozenset({victim}) - {-1}
        if stage == "split":
            lockers = (
                group if rng.randrange(3) else frozenset(i for i in members if rng.randrange(2))
            )
            deciders = single
            decide_at = rng.choice((HOLD, HOLD, NOW, rng.randint(1, 3000)))
        else:
            lockers = rng.choice((group, frozenset(honest), frozenset()))
            deciders = rng.choice((frozenset(), single, group, frozenset(honest)))
            decide_at = rng.choice((NOW, NOW, HOLD, rng.randint(1, 3000)))
        timeout = sim.config.timeout_ms(Step.PRECOMMIT, round)
        return RoundPlan(
            stage,
            None,
            group,
            lockers,
            deciders,
            rest=rng.choice(REST)
            if stage == "random"
            else rng.choice(("alt", "nil", "none", "late")),
            delay_ms=0 if stage == "split" else rng.choice((0, 0, 0, rng.randint(1, 2 * timeout))),
            decide_at=decide_at,
        )

    def _stale_plan(
        self,
        campaign: Campaign,
        node: SimNode,
        height: int,
        round: int,
        power: dict[int, int],
        honest: list[int],
        locked: list[int],
    ) -> RoundPlan:
        """``small`` (a, its proposer), as :meth:`_small_plan`: a polka for v' whose
        byzantine prevotes only a small group K sees, so only K locks v' and the others alone
        decide nothing fresh; ``lock`` (b > a, its proposer): a polka group of the others
        locks v, K gets another proposal and, held, the byzantine precommits for v;
        ``stale`` (c > b, its proposer or a member of K re-proposing v' with pol_round a):
        v' with a pol_round that only a broken proof-of-lock rule takes past the lock of b,
        to all but K, and K's decision of v released. With the correct rules the lockers of
        b prevote nil, and v' gets no polka."""
        everyone = frozenset(honest)
        a = campaign.round
        if not self._byzantine_proposer(node, round):
            if a >= 0 and self._repropose_seed(node, height, round, campaign):
                return self._stale_round(campaign, height, everyone)
            return self._quiet_plan(campaign, everyone)
        small = frozenset(i for i in locked if self._locked_round(i, height) == a)
        if a < 0 or not small:
            if locked:
                return self._quiet_plan(campaign, everyone)
            return self._small_plan(node, power, honest, round, everyone)
        if not self._has_polka(height, a, campaign.value):
            return self._quiet_plan(campaign, everyone)
        if campaign.lock_round < 0:
            if len(small) < len(locked):
                return self._quiet_plan(campaign, everyone)
            group = self._polka_group(node, power, [i for i in honest if i not in small], round)
            return RoundPlan("lock", None, group, group, small, "alt", 0, HOLD, votes_rest="none")
        return self._stale_round(campaign, height, everyone)

    def _stale_round(self, campaign: Campaign, height: int, everyone: frozenset[int]) -> RoundPlan:
        """The stale move: v' re-proposed to every honest validator not holding a held
        decision of this height (those get theirs released instead)."""
        rest = everyone - {dst for _, dst, _ in self.held.get(height, ())}
        return RoundPlan(
            "stale", campaign.value, rest, rest, rest, "alt", 0, NOW, votes_rest="none"
        )

    def _starve_plan(
        self,
        campaign: Campaign,
        node: SimNode,
        height: int,
        round: int,
        power: dict[int, int],
        honest: list[int],
        locked: list[int],
    ) -> RoundPlan:
        """``small`` (a): a small group L (the others alone make no polka, with the byzantine
        power they do) locks w, seeing the byzantine prevotes; ``lock`` (b > a): v proposed
        fresh to everyone, the others lock it with the byzantine prevotes, which L does not
        get (it would lock v too); from then on ``starve``: nil votes, no proposals.
        Re-proposals that carry their polka's round (line 16) still get every honest
        prevote; ones that do not get only their lockers'."""
        everyone = frozenset(honest)
        total = sum(power.values())
        byz_power = total - sum(power[i] for i in honest)
        a = campaign.round
        small = [i for i in locked if self._locked_round(i, height) == a]
        if a >= 0 and len(small) < len(locked):
            return RoundPlan("starve", None, everyone, everyone, frozenset(), "same", 0, NOW)
        if not self._byzantine_proposer(node, round):
            return self._quiet_plan(campaign, everyone)
        if small:
            others = sum(power[i] for i in honest if i not in small)
            if 3 * (others + byz_power) > 2 * total and 3 * others <= 2 * total:
                # the small group does not see the polka (it would lock v too, line 36)
                lockers = everyone - frozenset(small)
                return RoundPlan(
                    "lock", None, lockers, lockers, frozenset(), "alt", 0, NOW, votes_rest="none"
                )
            return self._quiet_plan(campaign, everyone)
        if locked:
            return self._quiet_plan(campaign, everyone)
        return self._small_plan(node, power, honest, round, everyone)

    def _small_plan(
        self,
        node: SimNode,
        power: dict[int, int],
        honest: list[int],
        round: int,
        everyone: frozenset[int],
    ) -> RoundPlan:
        """A polka for a fresh value whose byzantine prevotes only a small group L sees (so
        only L locks): the others alone can then decide nothing fresh."""
        total = sum(power.values())
        byz_power = total - sum(power[i] for i in honest)
        lockers = self._small_group(node, power, honest, round)
        if not lockers:
            return RoundPlan("pass", None, everyone, everyone, frozenset(), "same", 0, NOW)
        group = set(lockers)
        for i in sorted(honest, key=lambda i: (-power[i], i)):
            if 3 * (sum(power[j] for j in group) + byz_power) > 2 * total:
                break
            group.add(i)
        return RoundPlan(
            "small", None, frozenset(group), lockers, frozenset(), "alt", 0, NOW, votes_rest="none"
        )

    def _repropose_seed(self, node: SimNode, height: int, round: int, campaign: Campaign) -> bool:
        """Whether the round's honest proposer re-proposes v' with pol_round a (a member of K
        does, its validValue being v' from round a), after a newer lock of the others."""
        m = self.sim.nodes[self._proposer(node, round)].machine
        if m is None or m.height != height or m.valid_round != campaign.round:
            return False
        if m.valid_value is None or m.valid_value.block_id() != campaign.value:
            return False
        return campaign.lock_round > campaign.round

    def _quiet_plan(self, campaign: Campaign, everyone: frozenset[int]) -> RoundPlan:
        """A round it waits through: before its first move its validators vote as their
        machines do (the height may end); after it, nil (so no lock moves but by the rules)."""
        stage = "pass" if campaign.round < 0 else "starve"
        return RoundPlan(stage, None, everyone, everyone, frozenset(), "same", 0, NOW)

    def _small_group(
        self, node: SimNode, power: dict[int, int], honest: list[int], round: int
    ) -> frozenset[int]:
        """The smallest set L of honest validators such that the others alone are short of a
        polka and, with the byzantine power, past one (``3·(H − L) ≤ 2T < 3·(T − L)``), if
        it can without an honest proposer of the next rounds (who would re-propose its
        locked value, which the others have no lock against); empty if there is none."""
        total = sum(power.values())
        honest_power = sum(power[i] for i in honest)
        upcoming = set(self._upcoming_proposers(node, round))
        best: tuple[int, int, frozenset[int]] | None = None
        for mask in range(1, 1 << len(honest)):
            chosen = frozenset(m for bit, m in enumerate(honest) if mask >> bit & 1)
            small = sum(power[i] for i in chosen)
            if 3 * (honest_power - small) <= 2 * total < 3 * (total - small):
                key = (len(chosen & upcoming), small, chosen)
                if best is None or key[:2] < best[:2]:
                    best = key
        return frozenset() if best is None else best[2]

    def _proposer(self, node: SimNode, round: int) -> int:
        """The node index of the proposer of ``round`` at ``node``'s height."""
        assert node.machine is not None
        return self.sim.addresses[node.machine.state.validators.proposer_for_round(round)]

    def _byzantine_proposer(self, node: SimNode, round: int) -> bool:
        return not self.sim.nodes[self._proposer(node, round)].honest

    def _upcoming_proposers(self, node: SimNode, round: int) -> list[int]:
        """The honest proposers of the next two rounds and of the rounds before a byzantine
        validator proposes again (up to 8 rounds), the next first."""
        sim = self.sim
        assert node.machine is not None
        validators = node.machine.state.validators
        proposers: list[int] = []
        for later in range(round + 1, round + 9):
            proposer = sim.addresses[validators.proposer_for_round(later)]
            if not sim.nodes[proposer].honest:
                if later > round + 2:
                    break
                continue
            proposers.append(proposer)
        return proposers

    def _polka_group(
        self, node: SimNode, power: dict[int, int], honest: list[int], round: int
    ) -> frozenset[int]:
        """The smallest group that makes a polka with the byzantine power (its honest members
        alone do not), without (if it can) the honest proposers of the next two rounds and
        of the rounds before a byzantine validator proposes again: they have no validValue
        then, and propose something new that the locked members refuse (or, once a nil
        polka has unlocked them, accept)."""
        sim, rng = self.sim, self.sim.rng
        assert node.machine is not None
        byz_power = sum(p for i, p in power.items() if not sim.nodes[i].honest)
        total = sum(power.values())
        proposers = self._upcoming_proposers(node, round)
        order = [i for i in honest if i not in proposers]
        rng.shuffle(order)
        # the next round's proposer last
        order += [i for i in reversed(list(dict.fromkeys(proposers))) if i in honest]
        members: list[int] = []
        for i in order:
            if 3 * (sum(power[j] for j in members) + byz_power) > 2 * total:
                break
            if sim.nodes[i].honest:
                members.append(i)
        return frozenset(members)

    def _random_group(
        self, honest: list[int], locked: list[int], power: dict[int, int], node: SimNode, round: int
    ) -> frozenset[int]:
        rng = self.sim.rng
        shape = rng.choice(("polka", "locked", "half", "all", "one"))
        if shape == "polka":
            return self._polka_group(node, power, honest, round)
        if shape == "locked":
            return frozenset(locked)
        if shape == "half":
            return frozenset(i for i in honest if rng.randrange(2))
        if shape == "all":
            return frozenset(honest)
        return frozenset({rng.choice(honest)}) if honest else frozenset()

    def _proposal_value(
        self, node: SimNode, plan: RoundPlan, proposal: Proposal, block: Block
    ) -> tuple[Block, int]:
        """The block and pol_round it proposes."""
        rng = self.sim.rng
        h, r = proposal.height, proposal.round
        own = block.block_id()
        if plan.stage == "pass":
            return block, proposal.pol_round
        if plan.stage in ("small", "lock"):
            return self._fresh(node, block), -1
        if plan.stage == "stale":
            # v' with the round of its real (older) polka, or with the round of the others'
            # lock (a round with 2f+1 prevotes, none of them for v')
            campaign = self.campaigns[h]
            relocked = any(
                self._locked_round(i, h) == campaign.lock_round for i in range(len(self.sim.nodes))
            )
            pol_round = campaign.lock_round if relocked and rng.randrange(4) else campaign.round
            return self.blocks[campaign.value], pol_round
        locks = {self._locked_value(i, h) for i in range(len(self.sim.nodes))} - {None}
        old = [b for k, b in self.blocks.items() if b.header.height == h and k != own]
        if plan.stage == "break":
            # Another value than the locked ones: an old one with a polka, or a fresh one,
            # with a pol_round at or above the locks (or -1).
            others = [b for b in old if b.block_id() not in locks]
            if others and rng.randrange(2):
                chosen = rng.choice(others)
            else:
                chosen = (
                    block if own not in locks and rng.randrange(2) else self._fresh(node, block)
                )
            return chosen, self._pol_round(h, r, chosen.block_id(), above_locks=True)
        choice = rng.randrange(4)
        if choice == 0 or (choice >= 2 and not old):
            chosen, pol_round = block, proposal.pol_round  # what an honest proposer would send
        elif choice == 1:
            chosen, pol_round = self._fresh(node, block), -1
        else:
            chosen = rng.choice(old)  # a re-proposal of an old value
            pol_round = self._pol_round(h, r, chosen.block_id(), above_locks=False)
        if rng.randrange(3) == 0:
            pol_round = self._pol_round(h, r, chosen.block_id(), above_locks=False)
        return chosen, pol_round

    def _pol_round(self, height: int, round: int, value: bytes, *, above_locks: bool) -> int:
        """A pol_round for proposing ``value`` at ``round``: a round with a polka for it
        (counting the byzantine power), the honest validators' highest lock, or any round."""
        rng = self.sim.rng
        if round == 0:
            return -1
        locks = [self._locked_round(i, height) for i in range(len(self.sim.nodes))]
        top = max(locks)
        polkas = [vr for vr in range(round) if self._has_polka(height, vr, value)]
        if above_locks:
            options = [-1] + [top] * 3 if 0 <= top < round else [-1, rng.randrange(round)]
            return rng.choice(options + polkas * 3)
        options = [-1, rng.randrange(round)] + ([top] * 2 if 0 <= top < round else [])
        return rng.choice(options + polkas * 3)

    def _has_polka(self, height: int, round: int, value: bytes) -> bool:
        """Whether the honest prevotes it saw for ``value`` at ``round``, with every byzantine
        validator's, make 2f+1."""
        votes = self.prevotes.get((height, round, value))
        if not votes:
            return False
        byz = next((n for n in self.sim.nodes if not n.honest and n.machine is not None), None)
        if byz is None or byz.machine is None or byz.machine.height != height:
            return False
        vals = byz.machine.state.validators
        honest = {vals.index_of(n.key.address) for n in self.sim.nodes if n.honest}
        byz_power = sum(vals.validators[i].power for i in range(len(vals)) if i not in honest)
        seen = sum(vals.validators[i].power for i in votes if i in honest)
        return 3 * (seen + byz_power) > 2 * vals.total_power

    def _locked_round(self, index: int, height: int) -> int:
        node = self.sim.nodes[index]
        m = node.machine
        return m.locked_round if node.honest and m is not None and m.height == height else -1

    def _locked_value(self, index: int, height: int) -> bytes | None:
        node = self.sim.nodes[index]
        m = node.machine
        return m.locked_block_hash if node.honest and m is not None and m.height == height else None

    def _powers(self, node: SimNode) -> dict[int, int]:
        assert node.machine is not None
        vals = node.machine.state.validators
        return {
            i: vals.validators[vals.index_of(n.key.address)].power
            for i, n in enumerate(self.sim.nodes)
        }

    # ------------------------------------------------------------------ signing and sending

    def _fresh(self, node: SimNode, block: Block) -> Block:
        """A new valid block of the height (another set of transactions)."""
        txs = block.txs + (b"adv%d=x%d" % (node.index, self.sim.rng.randint(0, 1 << 20)),)
        header = dataclasses.replace(block.header, data_hash=crypto.merkle_root(list(txs)))
        fresh = dataclasses.replace(block, header=header, txs=txs)
        self.blocks[fresh.block_id()] = fresh
        return fresh

    def _vote(self, node: SimNode, template: Vote, kind: int, round: int, value: bytes) -> Vote:
        extension = node.app.extend_vote(template.height) if kind == PRECOMMIT and value else b""
        unsigned = dataclasses.replace(
            template,
            kind=kind,
            round=round,
            block_hash=value,
            extension=extension,
            extension_signature=b"",
        )
        return RawSigner(node.key).sign_vote(unsigned)

    def _polka(self, height: int, round: int, value: bytes, timestamp_ms: int) -> list[Any]:
        """The prevotes it knows for ``value`` at ``round``, and every byzantine validator's."""
        votes = self.prevotes.get((height, round, value), {})
        messages: list[Any] = [VoteReceived(v) for v in votes.values()]
        for byz in self.sim.nodes:
            if byz.byzantine is not ByzantineKind.ADAPTIVE or byz.machine is None:
                continue
            index = byz.machine.state.validators.index_of(byz.key.address)
            if index < 0 or byz.machine.height != height:
                continue
            unsigned = Vote(
                PREVOTE, height, round, value, timestamp_ms, byz.key.address, index, b"", b"", b""
            )
            messages.append(VoteReceived(RawSigner(byz.key).sign_vote(unsigned)))
        return messages

    def _release(self, height: int) -> None:
        """Sends the precommits held back at ``height``."""
        for src, dst, message in self.held.pop(height, ()):
            self.victims.setdefault(height, set()).add(dst)
            self.sim.send(src, dst, message)

    def _deliver(
        self,
        node: SimNode,
        plan: RoundPlan,
        rest: str,
        targets: frozenset[int],
        mine: tuple[Any, ...],
        other: tuple[Any, ...],
        late_ms: int,
    ) -> None:
        """``mine`` to the targets (and the byzantine validators), the rest as the plan says."""
        for dst in range(len(self.sim.nodes)):
            if dst == node.index:
                continue
            if dst in targets or not self.sim.nodes[dst].honest or rest == "same":
                self._send(node, dst, mine, plan.delay_ms)
            elif rest == "late":
                self._send(node, dst, mine, late_ms)
            elif rest in ("alt", "nil") and other:
                self._send(node, dst, other, 0)

    def _send(self, node: SimNode, dst: int, messages: tuple[Any, ...], delay_ms: int) -> None:
        for m in messages:
            if delay_ms:
                self.sim.send_later(node.index, dst, m, delay_ms)
            else:
                self.sim.send(node.index, dst, m)
