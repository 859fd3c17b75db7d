import prfaas_gym.env.registration  # noqa: F401,E402  registers the prfaas/ Gymnasium env ids
