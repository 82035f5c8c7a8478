import grpc
import pytest

from govctl.emulator.rpc import RpcError, page


def test_page_walks_every_item_once() -> None:
    items = list(range(7))
    seen: list[int] = []
    token = ""
    while True:
        chunk, token = page(items, 3, token)
        seen += chunk
        if not token:
            break
    assert seen == items


@pytest.mark.parametrize("token", ["garbage!", "bzo5OTk="])
def test_page_rejects_tokens_it_did_not_issue(token: str) -> None:
    with pytest.raises(RpcError) as err:
        page([1, 2], 1, token)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
