"""Session backends for agent frameworks, built on any :class:`~sessionstore.ObjectSessionStore`.

Each integration is its own module and imports its framework only when imported itself
(``import sessionstore`` loads none of them):

- :mod:`sessionstore.integrations.openai_agents`: ``ObjectStorageSession`` for the OpenAI
  Agents SDK (``pip install 'sessionstore[openai-agents]'``).
"""
