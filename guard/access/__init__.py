"""Who may call: API keys and their roles and tenants, the authenticator both transports share, and the
admin key written on a first start."""
