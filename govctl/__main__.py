from govctl.cli.main import run

run()
