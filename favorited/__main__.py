from favorited.cli import main

raise SystemExit(main())
