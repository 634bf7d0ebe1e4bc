def pytest_configure(config):
    config.addinivalue_line("markers", "slow: imports a framework or trains")
