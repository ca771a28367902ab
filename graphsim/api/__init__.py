"""The simulator's HTTP faces, one handler module per area: Entra (`entra`), Graph events and
calendars (`events`), calendarView delta (`delta`), getSchedule (`schedule`), `$batch`
(`batch`), subscriptions (`subscriptions`), Key Vault (`keyvault`) and the control API
(`control`). `pipeline` is the Graph request pipeline they all run in; `calls` the request and
answer it passes around.

Rule: a handler translates HTTP to the model and back; state lives in `graphsim.model`, and
time, tokens, throttling and delivery in `graphsim.runtime`.
"""
