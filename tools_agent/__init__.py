"""The default graph: a ReAct tools agent on langchain-openai, configured per assistant and run."""
