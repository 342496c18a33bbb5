from valuecorpus.cli import main

main()
