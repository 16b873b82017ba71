"""What a request costs: prices per token (:mod:`.pricing`), litellm's price table
(:mod:`.price_table`), the model catalog and its deprecations (:mod:`.catalog`),
and the tokenizer that counts what a server does not (:mod:`.tokens`)."""
