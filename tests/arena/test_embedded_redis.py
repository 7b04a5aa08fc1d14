import redis

from arena.embedded_redis import embedded_redis, free_port


def test_embedded_redis_is_a_real_server_that_stops_on_exit(tmp_path):
    with embedded_redis(data_dir=tmp_path) as url:
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.rpush("queue", "job")
        assert client.lpop("queue") == b"job"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        still_up = True
    except redis.ConnectionError:
        still_up = False
    assert not still_up


def test_free_port_avoids_a_port_in_use():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port(taken) != taken
