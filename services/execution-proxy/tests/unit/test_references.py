"""Execution ids of orders with a reference: one derivation for chat and images, each in its own
namespace."""

from __future__ import annotations

from uuid import uuid4

from execution_proxy.application.executions import ChatOrder, execution_id_of, referenced_execution_id
from execution_proxy.application.images import REFERENCE_NAMESPACE as IMAGES
from execution_proxy.application.images import ImageOrder, Images

LENSER = uuid4()


def test_an_image_reference_is_derived_as_a_chat_one_in_its_own_namespace():
    image = ImageOrder("fal", "flux", "a cat", 1, None, lenser_id=LENSER, payer_id=LENSER, reference_id="r")
    chat = ChatOrder(
        "platform_credit", "openai", "gpt", (), lenser_id=LENSER, payer_id=LENSER, reference_id="r"
    )

    assert Images.execution_id(image) == referenced_execution_id(
        "platform_credit", LENSER, LENSER, "r", IMAGES
    )
    assert Images.execution_id(image) == Images.execution_id(image)  # every retry names the same
    assert execution_id_of(chat) == referenced_execution_id("platform_credit", LENSER, LENSER, "r")
    assert Images.execution_id(image) != execution_id_of(chat)  # a chat reference never names an image


def test_an_order_without_a_reference_is_a_new_execution_each_time():
    image = ImageOrder("fal", "flux", "a cat", 1, None, lenser_id=LENSER, payer_id=LENSER)
    assert Images.execution_id(image) != Images.execution_id(image)
