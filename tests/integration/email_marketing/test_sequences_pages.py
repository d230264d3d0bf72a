"""Sequence pages: create one from steps written a line each, activate it, see who is where."""

from __future__ import annotations

from orbit.platform.runtime import Runtime
from tests.conftest import Member

from .conftest import API, contact, template
from .test_sequences import _deliver


async def test_a_sequence_is_written_activated_and_followed_from_its_pages(
    marketer: Member, outsider: Member, runtime: Runtime
) -> None:
    base = f"/t/{marketer.slug}/apps/email_marketing/sequences"
    await template(marketer, name="Welcome")
    trial = (await marketer.client.post(f"{API}/lists", json={"name": "Trial"})).json()["id"]
    empty = await marketer.client.get(base)
    assert empty.status_code == 200, empty.text
    assert "No sequences yet." in empty.text
    assert f'value="list:{trial}"' in empty.text

    wrong = await marketer.client.post(
        base,
        data={"name": "Bad", "trigger": "manual", "from_email": "hi@shop.example.com",
              "steps": "wait\nemail Nope\njump around"},
    )  # fmt: skip
    assert wrong.status_code == 400
    for line in ("steps line 1", "steps line 2: no template called", "steps line 3"):
        assert line in wrong.text
    assert (await marketer.client.get(f"{API}/sequences")).json() == {"items": []}

    made = await marketer.client.post(
        base,
        data={
            "name": "Trial follow-up",
            "trigger": f"list:{trial}",
            "from_email": "hi@shop.example.com",
            "from_name": "Shop",
            "quiet_start": "21:00",
            "quiet_end": "08:00",
            "steps": "wait 2 days\nemail Welcome\nwait until 09:00 mon,tue\n"
            "if clicked then next else end\ntask in 24h Call them\ntag warm, trial",
        },
    )
    assert made.status_code == 303, made.text
    page_url = made.headers["location"]
    [sequence] = (await marketer.client.get(f"{API}/sequences")).json()["items"]
    assert page_url.endswith(f"/sequences/{sequence['id']}")
    assert sequence["trigger"] == {"type": "list_joined", "list_id": trial}
    assert [s["type"] for s in sequence["steps"]] == [
        "wait", "email", "wait", "condition", "task", "tag",
    ]  # fmt: skip
    assert sequence["steps"][2]["until"] == {"time": "09:00", "days": ["mon", "tue"]}
    assert sequence["steps"][4]["due_in_hours"] == 24

    page = await marketer.client.get(f"{base}/{sequence['id']}")
    assert page.status_code == 200
    for line in ("wait 2d", "email Welcome", "wait until 09:00 mon,tue",
                 "if clicked then next else end", "task in 24h Call them", "tag warm, trial",
                 "quiet hours 21:00–08:00", "Nobody has entered yet."):  # fmt: skip
        assert line in page.text, line
    activated = await marketer.client.post(f"{base}/{sequence['id']}/activate")
    assert activated.status_code == 303
    ada = await contact(marketer, first_name="Ada", last_name="King", email="ada@example.org")
    await marketer.client.post(f"{API}/lists/{trial}/members", json={"contact_ids": [ada["id"]]})
    await _deliver(runtime)
    page = await marketer.client.get(f"{base}/{sequence['id']}")
    assert "<strong>active</strong>" in page.text
    assert "Ada King &lt;ada@example.org&gt;" in page.text
    assert "step 1 (wait) due" in page.text
    assert ">Pause</button>" in page.text
    listing = await marketer.client.get(base)
    assert "Trial follow-up" in listing.text
    assert "joins the list Trial" in listing.text

    theirs = await outsider.client.get(
        f"/t/{outsider.slug}/apps/email_marketing/sequences/{sequence['id']}"
    )
    assert theirs.status_code == 404
    assert (
        "Trial follow-up"
        not in (
            await outsider.client.get(f"/t/{outsider.slug}/apps/email_marketing/sequences")
        ).text
    )
