from govctl.emulator.rest.gateway import NativeRoute


def routes() -> list[NativeRoute]:
    return []
