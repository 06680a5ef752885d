"""One-click 查冻扣: enforcement plans that query, freeze, deduct and seal a case in one step."""
