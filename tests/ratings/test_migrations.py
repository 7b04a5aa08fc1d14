import importlib

from django.apps import apps

from battles.services import client_hash
from ratings.models import RatedVote
from tests.factories import make_model
from tests.ratings.conftest import rated_vote


def test_votes_rated_before_addresses_were_kept_take_their_battles_address(db):
    address_from_battles = importlib.import_module("ratings.migrations.0005_rated_vote_address_judge_flag_kind")
    alpha, bravo = make_model("alpha"), make_model("bravo")
    from_an_address = rated_vote(alpha, bravo, ip="198.51.100.7")
    from_nowhere = rated_vote(alpha, bravo)
    RatedVote.objects.update(client_hash="")  # as the column was added, before the backfill
    address_from_battles.client_hash_from_battles(apps, None)
    assert RatedVote.objects.get(vote=from_an_address).client_hash == client_hash("198.51.100.7")
    assert RatedVote.objects.get(vote=from_nowhere).client_hash == ""
