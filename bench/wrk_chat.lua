-- wrk script: POST a small chat completion with a JSON Schema (the shape the benchmark sends).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"fake-model","messages":[{"role":"system","content":"You write value dilemmas."},' ..
  '{"role":"user","content":"Write one dilemma about honesty and loyalty at work."}],' ..
  '"response_format":{"type":"json_schema","json_schema":{"name":"r","strict":true,"schema":' ..
  '{"type":"object","properties":{"text":{"type":"string"},"values":{"type":"array",' ..
  '"items":{"enum":["honesty","loyalty","care"]},"minItems":1,"maxItems":3}},' ..
  '"required":["text","values"],"additionalProperties":false}}},"max_tokens":256}'
